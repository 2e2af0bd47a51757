"""Checks a workflow graph, and a whole sweep over it, against one instance's `/object_info`
before any GPU time is spent.

Owns the rules ComfyUI applies in `execution.py` `validate_inputs` (node classes exist,
required inputs present, links land on an output of a matching type, INT/FLOAT ranges, COMBO
membership), plus the one ComfyUI 0.3.64 skips: a value outside a newer-style
`["COMBO", {"options": [...]}]` input is accepted with 200 and only fails at execution
(`ImageQuantize.dither = "sparkle"`, captures/post_prompt_bad_combo). Literal types are
checked strictly where ComfyUI would coerce (`int("7")`, `bool("no")`): the value we send is
the value recorded for the run, so it must already be the right type.

A sweep is checked without patching its runs: patching only changes bound inputs, so the
template with the fixed values is checked once, then each distinct varied value once per
binding. Pure: no I/O; `object_info` is whatever the pool fetched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any, cast

from app.domain.contracts import Contract, JsonValue
from app.domain.expansion import SweepPlan
from app.domain.patching import patch_graph
from app.domain.problems import Loc, Problem

InputSpec = Sequence[Any]  # ["INT", {...}], [["a", "b"], {...}] or ["COMBO", {"options": [...]}]
_Found = tuple[str, str]  # (problem type, reason)

# The literal types ComfyUI converts in validate_inputs, and the Python types we let through
# unconverted: an int is a fine FLOAT (ComfyUI calls float() on it), a bool is no INT.
_NUMBER_KINDS = frozenset({"INT", "FLOAT"})
_ARTICLES = {"INT": "an INT", "FLOAT": "a FLOAT", "STRING": "a STRING", "BOOLEAN": "a BOOLEAN"}
_ACCEPTED_TYPES: dict[str, set[type]] = {
    "INT": {int},
    "FLOAT": {int, float},
    "STRING": {str},
    "BOOLEAN": {bool},
}
# What the options of well-known COMBO inputs are, for messages a person can act on.
_OPTION_NOUNS = {
    "sampler_name": "samplers",
    "scheduler": "schedulers",
    "ckpt_name": "checkpoints",
    "lora_name": "LoRAs",
    "unet_name": "diffusion models",
    "vae_name": "VAEs",
    "clip_name": "text encoders",
    "control_net_name": "ControlNets",
    "model_name": "models",
}
_OPTIONS_LISTED = 10
_VALUE_SHOWN = 60


@dataclass(frozen=True)
class NodeProblem:
    """One input (or node) ComfyUI would refuse, named as in its `node_errors`."""

    node_id: str
    class_type: str
    input_name: str | None  # None when the whole node is at fault (missing_node_type)
    type: str
    message: str  # a full sentence naming the node, its class and the input
    received: object = None


# --- one input against its spec ------------------------------------------------------------


def _kind(spec: InputSpec) -> str:
    """INT, FLOAT, STRING, BOOLEAN, COMBO, or a link type such as MODEL or "IMAGE,MASK"."""
    first = spec[0] if spec else "*"
    return "COMBO" if isinstance(first, list | tuple) else str(first)


def _extra(spec: InputSpec) -> Mapping[str, Any]:
    extra = spec[1] if len(spec) > 1 else None
    return extra if isinstance(extra, Mapping) else {}


def _options(spec: InputSpec) -> Sequence[Any]:
    # Old-style nodes give the option list as the type itself; nodes written against the
    # newer comfy_api give the type "COMBO" and the list under `options`.
    first = spec[0] if spec else None
    if isinstance(first, list | tuple):
        return first
    options = _extra(spec).get("options", [])
    return options if isinstance(options, list | tuple) else []


class _InputRule:
    """The checks for literal values of one input, compiled once per spec: a sweep checks
    thousands of values against a handful of inputs."""

    def __init__(self, input_name: str, spec: InputSpec) -> None:
        self.input_name = input_name
        self.kind = _kind(spec)
        extra = _extra(spec)
        self.minimum = extra.get("min")
        self.maximum = extra.get("max")
        self.options: Sequence[Any] = _options(spec) if self.kind == "COMBO" else ()
        self.option_set = _hashable_set(self.options)

    def problem(self, value: object) -> _Found | None:
        if self.kind == "COMBO":
            return self._combo_problem(value)
        if self.kind not in _ARTICLES:
            # A link-only type (MODEL) or a custom widget: ComfyUI checks no literal here.
            return None
        if not _has_kind(self.kind, value):
            return "invalid_input_type", f"{_show(value)} is not {_ARTICLES[self.kind]}"
        if self.kind in _NUMBER_KINDS:
            return self._range_problem(value)
        return None

    def accepts_all(self, values: Sequence[object]) -> bool:
        """True when `problem` would find nothing in any of `values`, decided with C-level
        set, min and max calls: a sweep may vary 10,000 distinct seeds or sample points.
        False only means they must be looked at one by one."""
        if self.kind == "COMBO":
            try:
                return self.option_set is not None and self.option_set.issuperset(values)
            except TypeError:  # an unhashable value
                return False
        if self.kind not in _ARTICLES or not values:
            return True
        if not set(map(type, values)) <= _ACCEPTED_TYPES[self.kind]:
            return False
        if self.kind == "FLOAT" and not all(map(math.isfinite, cast(Sequence[float], values))):
            return False
        return self.kind not in _NUMBER_KINDS or self._within_range(cast(Sequence[float], values))

    def _within_range(self, values: Sequence[float]) -> bool:
        if self.minimum is not None and min(values) < self.minimum:
            return False
        return self.maximum is None or max(values) <= self.maximum

    def _range_problem(self, value: Any) -> _Found | None:
        # Same order and names as validate_inputs: min first, then max.
        if self.minimum is not None and value < self.minimum:
            return "value_smaller_than_min", f"{value} is below this instance's min {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return "value_bigger_than_max", f"{value} is above this instance's max {self.maximum}"
        return None

    def _combo_problem(self, value: object) -> _Found | None:
        if not self.options:
            # Model-file inputs list the files in the instance's models folder, so an empty
            # list means it has none and every value fails (ComfyUI: value_not_in_list).
            reason = f"{_show(value)} cannot load: no {self.input_name} files on this instance"
            return "value_not_in_list", reason
        if _is_member(value, self.option_set, self.options):
            return None
        return "value_not_in_list", f"{_show(value)} is not one of {self._offered()}"

    def _offered(self) -> str:
        count = len(self.options)
        noun = _OPTION_NOUNS.get(self.input_name.rstrip("0123456789"))
        text = f"the {count} {noun or self.input_name + ' options'} this instance offers"
        if count <= _OPTIONS_LISTED:
            text += ": " + ", ".join(str(option) for option in self.options)
        return text


def _hashable_set(options: Sequence[Any]) -> frozenset[Any] | None:
    try:
        return frozenset(options)
    except TypeError:
        return None


def _is_member(value: object, option_set: frozenset[Any] | None, options: Sequence[Any]) -> bool:
    if option_set is not None:
        try:
            return value in option_set
        except TypeError:  # an unhashable value equals no hashable option
            return False
    return value in options


def _has_kind(kind: str, value: object) -> bool:
    # Exact types: bool is a subclass of int, and Python counts True as 1.
    if type(value) not in _ACCEPTED_TYPES[kind]:
        return False
    # Python's json decodes NaN and Infinity, which no node's range admits.
    return kind != "FLOAT" or math.isfinite(cast(float, value))


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _VALUE_SHOWN else text[: _VALUE_SHOWN - 1] + "…"


# --- links ---------------------------------------------------------------------------------


def _types_match(received: str, expected: str) -> bool:
    # comfy_execution/validation.py validate_node_input: "*" matches anything either way,
    # and "A,B" unions match when the two sides share one type.
    if received == expected or "*" in (received, expected):
        return True
    left = {part.strip() for part in received.split(",")}
    return not left.isdisjoint(part.strip() for part in expected.split(","))


def _output_type(output: object) -> str:
    # A node may return a COMBO's option list as its output type.
    return "COMBO" if isinstance(output, list | tuple) else str(output)


def _link_problem(
    graph: Mapping[str, Any], object_info: Mapping[str, Any], spec: InputSpec, link: Sequence[Any]
) -> _Found | None:
    if len(link) != 2:
        return "bad_linked_input", f"a link is [node_id, output_index], got {_show(link)}"
    source_id, index = link
    source = graph.get(source_id) if isinstance(source_id, str) else None
    if not isinstance(source, Mapping):
        # ComfyUI reports this as a KeyError in exception_during_inner_validation.
        return "bad_linked_input", f"links to node {source_id!r}, which is not in the workflow"
    class_type = str(source.get("class_type"))
    info = object_info.get(class_type)
    if not isinstance(info, Mapping):
        return None  # the source node is reported as missing_node_type on its own
    outputs = info.get("output") or []
    label = f"node {source_id} ({class_type})"
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(outputs):
        return "bad_linked_input", f"{label} has no output {index!r} (it has {len(outputs)})"
    received, expected = _output_type(outputs[index]), _kind(spec)
    if _types_match(received, expected):
        return None
    return "return_type_mismatch", f"expects {expected}, but {label} output {index} is {received}"


# --- a whole graph -------------------------------------------------------------------------


def check_graph(graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> list[NodeProblem]:
    """Every problem ComfyUI's validation (and its COMBO gap) would find in `graph`."""
    problems: list[NodeProblem] = []
    for node_id, node in graph.items():
        problems += _node_problems(graph, object_info, str(node_id), node)
    return problems


def _node_problems(
    graph: Mapping[str, Any], object_info: Mapping[str, Any], node_id: str, node: Any
) -> list[NodeProblem]:
    node = node if isinstance(node, Mapping) else {}
    class_type = str(node.get("class_type", ""))
    info = object_info.get(class_type)
    if not isinstance(info, Mapping):
        message = f"node {node_id}: this instance has no node type {class_type!r}"
        return [NodeProblem(node_id, class_type, None, "missing_node_type", message, class_type)]
    required: Mapping[str, InputSpec] = (info.get("input") or {}).get("required") or {}
    specs = _declared_inputs(info)
    inputs: Mapping[str, Any] = node.get("inputs") or {}
    found = [
        (name, ("required_input_missing", "required, but the workflow does not set it"), None)
        for name in required
        if name not in inputs
    ]
    for name, value in inputs.items():
        if name in specs:  # ComfyUI ignores inputs a node does not declare
            problem = _input_problem(graph, object_info, name, specs[name], value)
            found += [(name, problem, value)] if problem is not None else []
    label = f"node {node_id} ({class_type}) input"
    return [
        NodeProblem(node_id, class_type, name, kind, f"{label} {name}: {reason}", value)
        for name, (kind, reason), value in found
    ]


def _input_problem(
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
    name: str,
    spec: InputSpec,
    value: Any,
) -> _Found | None:
    if isinstance(value, Mapping) and "__value__" in value:
        value = value["__value__"]  # ComfyUI unwraps a list widget value sent this way
    elif isinstance(value, list | tuple):  # API format: any list is a link
        return _link_problem(graph, object_info, spec, value)
    return _InputRule(name, spec).problem(value)


# --- a whole sweep -------------------------------------------------------------------------


@dataclass(frozen=True)
class _Variation:
    """One varied parameter from one source (an axis, the seeds, the sample points)."""

    param: str
    loc: Loc  # where its values' problems point
    param_loc: Loc  # where a problem with the parameter itself points
    values: Sequence[JsonValue]  # each distinct value once, in order of first use
    positions: Sequence[int]  # for each of them, its first position in its dimension
    stride: int  # runs between consecutive positions: position * stride is the first run


def preflight_sweep(
    workflow_graph: Mapping[str, Any],
    contract: Contract,
    plan: SweepPlan,
    object_info: Mapping[str, Any],
) -> list[Problem]:
    """Every problem any run of `plan` would meet on the instance described by `object_info`,
    found without building the runs: cost grows with distinct values, not with runs."""
    variations = _variations(plan)
    varied = {variation.param for variation in variations}
    problems = _template_problems(workflow_graph, contract, plan, object_info, varied)
    for variation in variations:
        problems += _variation_problems(workflow_graph, contract, object_info, variation)
    return problems


def _template_problems(
    graph: Mapping[str, Any],
    contract: Contract,
    plan: SweepPlan,
    object_info: Mapping[str, Any],
    varied: set[str],
) -> list[Problem]:
    fixed = {name: value for name, value in plan.fixed.items() if name not in varied}
    owners = _binding_owners(contract, fixed)
    # The template's literals at varied inputs are never sent; their values are checked below.
    skipped = set(_binding_owners(contract, varied))
    problems: list[Problem] = []
    for found in check_graph(patch_graph(graph, contract, fixed), object_info):
        key = (found.node_id, found.input_name)
        if key in skipped:
            continue
        owner = owners.get(key)
        loc: Loc = ("base", owner) if owner is not None else ("workflow",)
        problems.append(Problem(loc, found.type, f"every run: {found.message}", found.received))
    return problems


def _binding_owners(contract: Contract, names: Iterable[str]) -> dict[tuple[str, str | None], str]:
    owners: dict[tuple[str, str | None], str] = {}
    for name in names:
        parameter = contract.parameters.get(name)
        for binding in parameter.bindings if parameter is not None else ():
            owners[(binding.node_id, binding.input_name)] = name
    return owners


def _variation_problems(
    graph: Mapping[str, Any],
    contract: Contract,
    object_info: Mapping[str, Any],
    variation: _Variation,
) -> list[Problem]:
    parameter = contract.parameters.get(variation.param)
    problems: list[Problem] = []
    reported: set[int] = set()  # positions in variation.values: one problem per bad value
    for binding in parameter.bindings if parameter is not None else ():
        node = graph.get(binding.node_id)
        class_type = str(node.get("class_type")) if isinstance(node, Mapping) else ""
        info = object_info.get(class_type)
        if not isinstance(info, Mapping):
            continue  # the template check reports the missing node type once
        label = f"node {binding.node_id} ({class_type}) input {binding.input_name}"
        spec = _declared_inputs(info).get(binding.input_name)
        if spec is None:
            problems.append(_unknown_input(variation, label))
            continue
        rule = _InputRule(binding.input_name, spec)
        if not rule.accepts_all(variation.values):
            problems += _value_problems(variation, label, rule.problem, reported)
    return problems


def _declared_inputs(info: Mapping[str, Any]) -> Mapping[str, InputSpec]:
    declared = info.get("input") or {}
    return {**(declared.get("optional") or {}), **(declared.get("required") or {})}


def _unknown_input(variation: _Variation, label: str) -> Problem:
    # ComfyUI drops inputs a node does not declare, so every run would look the same.
    msg = f"{label} does not exist on this instance, so varying {variation.param} changes nothing"
    return Problem(variation.param_loc, "unknown_input", msg, variation.param)


def _value_problems(
    variation: _Variation,
    label: str,
    check: Callable[[object], _Found | None],
    reported: set[int],
) -> list[Problem]:
    problems: list[Problem] = []
    for position, value in enumerate(variation.values):
        if position in reported or (found := check(value)) is None:
            continue
        reported.add(position)
        first_run = variation.positions[position] * variation.stride
        msg = f"run {first_run}: {label}: {found[1]}"
        problems.append(Problem(variation.loc, found[0], msg, value))
    return problems


# --- where each varied value first appears -------------------------------------------------


def _variations(plan: SweepPlan) -> list[_Variation]:
    seeds = max(len(plan.seeds), 1)
    strides = _strides(plan, seeds)
    variations = [
        _Variation(
            axis.param,
            ("axes", i, "values"),
            ("axes", i, "param"),
            *_first_uses(axis.values),
            strides[i],
        )
        for i, axis in enumerate(plan.axes)
    ]
    if plan.seeds and plan.seed_param is not None:
        # Seeds vary fastest, so the seed at position s is first used by run s.
        values, positions = _first_uses(plan.seeds)
        seed = _Variation(plan.seed_param, ("seeds",), ("seeds",), values, positions, 1)
        variations.append(seed)
    if plan.samples:
        variations += _sample_variations(plan.samples, strides[len(plan.axes)])
    return variations


def _strides(plan: SweepPlan, seeds: int) -> list[int]:
    """Runs between consecutive positions of each dimension (axes, then sample points), in
    expand_sweep's order: seeds fastest, then the first dimension, then the next."""
    sizes = [len(axis.values) for axis in plan.axes] + [len(plan.samples)]
    if plan.mode == "zip":
        # Zip position j sets every dimension to j modulo its size, so j is first used at j.
        return [seeds] * len(sizes)
    return [seeds * math.prod(sizes[:d]) for d in range(len(sizes))]


def _sample_variations(samples: Sequence[Mapping[str, JsonValue]], stride: int) -> list[_Variation]:
    names = list(dict.fromkeys(chain.from_iterable(samples)))  # every point's names, in order
    return [
        _Variation(
            name,
            ("sampling", "ranges", name),
            ("sampling", "ranges", name),
            *_first_uses([point.get(name) for point in samples]),
            stride,
        )
        for name in names
    ]


def _first_uses(values: Sequence[JsonValue]) -> tuple[Sequence[JsonValue], Sequence[int]]:
    """Each distinct value once, in order of first use, with the position of that use."""
    try:
        first = _first_positions(_typed(values))
    except TypeError:  # an unhashable value: tell values apart by their repr
        first = _first_positions([repr(value) for value in values])
    if len(first) == len(values):  # all distinct, as seeds and sample points usually are
        return values, range(len(values))
    positions = sorted(first.values())
    return [values[p] for p in positions], positions


def _typed(values: Sequence[JsonValue]) -> Sequence[object]:
    # 1, 1.0 and True are one dict key, but not one value to ComfyUI's checks.
    if len(set(map(type, values))) < 2:
        return values
    return list(zip(map(type, values), values, strict=True))


def _first_positions(keys: Sequence[object]) -> dict[object, int]:
    # Built back to front so a value's first position is written last and wins; one C-level
    # dict() call, as a sweep may hold 10,000 distinct seeds.
    return dict(zip(reversed(keys), range(len(keys) - 1, -1, -1), strict=True))
