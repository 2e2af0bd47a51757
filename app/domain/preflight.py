"""Checks a whole sweep against one instance's `/object_info` before any GPU time is spent.

A sweep is checked without patching its runs: patching only changes bound inputs, so the
template with the fixed values is checked once (`app.domain.graph_check`), then each distinct
varied value once per binding (`app.domain.input_rules`). Pure: no I/O; `object_info` is
whatever the pool fetched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from typing import Any

from app.domain.contracts import Contract, JsonValue
from app.domain.expansion import SweepPlan
from app.domain.graph_check import check_graph
from app.domain.input_rules import InputRule
from app.domain.input_specs import declared_inputs
from app.domain.patching import patch_graph
from app.domain.problems import Loc, Problem, and_more


@dataclass(frozen=True)
class _Variation:
    """One varied parameter from one source (an axis, the seeds, the sample points)."""

    param: str
    loc: Loc  # where its values' problems point
    param_loc: Loc  # where a problem with the parameter itself points
    values: Sequence[JsonValue]  # each distinct value once, in order of first use
    positions: Sequence[int]  # for each of them, its first position in its dimension
    stride: int  # runs between consecutive positions: position * stride is the first run
    nouns: tuple[str, str] = ("value of this axis", "values of this axis")  # for "and 3 more"


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
        spec = declared_inputs(info).get(binding.input_name)
        if spec is None:
            problems.append(_unknown_input(variation, label))
            continue
        rule = InputRule(binding.input_name, spec)
        if not rule.accepts_all(variation.values):
            problems += _value_problems(variation, label, rule, reported)
    return problems


def _unknown_input(variation: _Variation, label: str) -> Problem:
    # ComfyUI drops inputs a node does not declare, so every run would look the same.
    msg = f"{label} does not exist on this instance, so varying {variation.param} changes nothing"
    return Problem(variation.param_loc, "unknown_input", msg, variation.param)


def _value_problems(
    variation: _Variation,
    label: str,
    rule: InputRule,
    reported: set[int],
) -> list[Problem]:
    # One problem per fault type, at the value first used, counting the others: a range of
    # 100 steps past the instance's max is one problem, not 69.
    first: dict[str, int] = {}
    offenders: dict[str, int] = {}
    for position, value in enumerate(variation.values):
        if position in reported or (found := rule.problem(value, suggest=False)) is None:
            continue
        reported.add(position)
        first.setdefault(found[0], position)
        offenders[found[0]] = offenders.get(found[0], 0) + 1
    problems: list[Problem] = []
    for type_, position in first.items():
        value = variation.values[position]
        fault = rule.problem(value)  # again, now with the closest options of a COMBO
        reason = fault[1] if fault is not None else type_
        first_run = variation.positions[position] * variation.stride
        more = and_more(offenders[type_] - 1, *variation.nouns)
        msg = f"run {first_run}: {label}: {reason}{more}"
        problems.append(Problem(variation.loc, type_, msg, value))
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
        seed = _Variation(
            plan.seed_param, ("seeds",), ("seeds",), values, positions, 1, ("seed", "seeds")
        )
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
            ("sampled value", "sampled values"),
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
