"""A first parameters contract for an API-format graph, drafted from the pool's node specs.

One parameter per literal widget input (links are wiring, not parameters), typed and bounded
by `/object_info`. The rules, in order:

- Left out: `filename_prefix` and `batch_size` everywhere, inputs that must match the model or
  the wiring (`draft_rules.PLUMBING_*`: VAE and text-encoder files, dtypes, resampling
  filters, a split sampler's noise switches), and the open ends of a split schedule
  (`start_at_step` 0, `end_at_step` at or past the node's steps).
- Bound together: every seed-like input (`seed`, `noise_seed`, or flagged
  `control_after_generate`) to one `seed`, because a sweep's seeds go to the parameter named
  `seed`; sampler settings (`steps`, `cfg`, `sampler_name`, `scheduler`) that hold the same
  value in several nodes; prompts of the same role (positive or negative, told by whether the
  text reaches a sampler's `negative` input) and the same text; a LoRA loader's model and
  clip strengths when equal; and a split schedule's hand-off (`end_at_step` of one sampler
  equal to `start_at_step` of the sampler reading its latent) to `switch_step`.
- Named: `seed`, `prompt`, `negative_prompt`, `switch_step`, `lora_strength`, else the input
  name made friendlier (`sampler`, `checkpoint`, ...). When two parameters would share a
  name, both become `<node>.<input>`, the node named by its snake-cased title (or class),
  numbered `_2`, `_3` when titles repeat: `first_pass.steps`, `ksampler_2.cfg`.
- Soft ranges from `draft_rules.SOFT_RANGES`, clipped to the hard bounds, as `x-sweep-range`.

A draft is a starting point to read and edit, not a registered contract. Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.draft_rules import (
    FRIENDLY_NAMES,
    LEFT_OUT_NAMES,
    PLUMBING_INPUTS,
    PLUMBING_NAMES,
    SHARED_NAMES,
    SOFT_RANGES,
)
from app.domain.input_rules import InputRule
from app.domain.input_specs import InputSpec, combo_options, declared_inputs, extra_info, input_kind
from app.domain.problems import Loc, Problem, SweepRejected
from app.domain.ui_format import is_ui_format, ui_to_api

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
# Every JSON client reads integers up to 2^53-1 exactly; ComfyUI's seeds go to 2^64-1.
SAFE_INT = 2**53 - 1
PROMPT_MAX_LENGTH = 10_000
TEXT_MAX_LENGTH = 1_000
# A model file under ComfyUI's models folder: relative, no "..", the characters files use.
FILE_PATTERN = r"^(?![/\\])(?!.*\.\.)[\w .()\[\]+,/\\-]+$"
_FILE_RE = re.compile(FILE_PATTERN)
_FILE_LIKE = re.compile(r"(/|\\|\.[A-Za-z0-9]{2,12}$)")
_SEED_NAMES = frozenset({"seed", "noise_seed"})
_WIDGET_KINDS = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
_LABEL_MAX = 40
_ROLE_DESCRIPTIONS = {
    "prompt": "What the image should show.",
    "negative_prompt": "What the image should avoid.",
}

Key = tuple[str, ...]


@dataclass(frozen=True)
class _Input:
    node_id: str
    class_type: str
    name: str
    value: Any
    spec: InputSpec
    kind: str


def draft_contract(
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
    *,
    title: str = "Drafted contract",
    loc: Loc = ("graph",),
) -> dict[str, Any]:
    """A JSON Schema contract for `graph`; raise SweepRejected naming each node or input the
    specs cannot type (`loc` prefixes every problem's location)."""
    check_api_graph(graph, object_info, loc)
    order = sorted(graph, key=_id_order)
    inputs = _literal_inputs(graph, object_info, order, loc)
    handoffs = _handoffs(graph)
    groups: dict[Key, list[_Input]] = {}
    for item in inputs:
        if _left_out(item, graph, handoffs):
            continue
        groups.setdefault(_meaning(item, graph, object_info, handoffs), []).append(item)
    if not groups:
        msg = "the graph has no literal widget inputs a contract could bind"
        raise SweepRejected([Problem(loc, "no_parameters", msg, None)])
    names = _names(groups, _node_labels(graph, order))
    properties = {names[key]: _property(key, members) for key, members in groups.items()}
    return {
        "$schema": SCHEMA_DIALECT,
        "title": title,
        "description": "Drafted by comfy-sweep from the graph and the pool's node specs.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }


# --- the graph ------------------------------------------------------------------------------


def check_api_graph(graph: Mapping[str, Any], object_info: Mapping[str, Any], loc: Loc) -> None:
    """Raise SweepRejected unless every node has a known class_type and an inputs object."""
    problems: list[Problem] = []
    if not graph:
        problems.append(Problem(loc, "empty_graph", "the workflow has no nodes", None))
    for node_id, node in graph.items():
        at = (*loc, node_id)
        if not isinstance(node, Mapping):
            problems.append(Problem(at, "invalid_node", "a node must be an object", node))
            continue
        class_type = node.get("class_type")
        if not isinstance(class_type, str) or not class_type:
            problems.append(
                Problem((*at, "class_type"), "missing", "a node needs a class_type", class_type)
            )
        elif class_type not in object_info:
            msg = f"node {node_id!r} has class {class_type!r}, which the pool does not offer"
            problems.append(Problem((*at, "class_type"), "unknown_node_class", msg, class_type))
        if not isinstance(node.get("inputs"), Mapping):
            msg = "a node needs an inputs object"
            problems.append(Problem((*at, "inputs"), "missing", msg, node.get("inputs")))
    if problems:
        raise SweepRejected(problems)


def _id_order(node_id: str) -> tuple[int, int, str]:
    return (0, int(node_id), "") if node_id.isdigit() else (1, 0, node_id)


def _is_link(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def _literal_inputs(
    graph: Mapping[str, Any], object_info: Mapping[str, Any], order: Sequence[str], loc: Loc
) -> list[_Input]:
    found: list[_Input] = []
    problems: list[Problem] = []
    for node_id in order:
        class_type = graph[node_id]["class_type"]
        specs = declared_inputs(object_info[class_type])
        for name, value in graph[node_id]["inputs"].items():
            spec = specs.get(name)
            if _is_link(value) or spec is None:
                # An input the specs do not declare cannot be typed; ComfyUI ignores it too.
                continue
            kind = input_kind(spec)
            if kind not in _WIDGET_KINDS:
                continue
            if kind != "COMBO":
                fault = InputRule(name, spec).problem(value)
                if fault is not None:
                    where = (*loc, node_id, "inputs", name)
                    problems.append(Problem(where, fault[0], f"{name}: {fault[1]}", value))
                    continue
            found.append(_Input(node_id, class_type, name, value, spec, kind))
    if problems:
        raise SweepRejected(problems)
    return found


def _handoffs(graph: Mapping[str, Any]) -> dict[tuple[str, str], str]:
    """(node, input) → the earlier sampler, for each split-schedule hand-off: a sampler whose
    latent comes from another and starts at the step where that one ends."""
    found: dict[tuple[str, str], str] = {}
    for node_id, node in graph.items():
        source = node["inputs"].get("latent_image")
        if not _is_link(source) or source[0] not in graph:
            continue
        start = node["inputs"].get("start_at_step")
        end = graph[source[0]]["inputs"].get("end_at_step")
        if isinstance(start, int) and start == end:
            found[(source[0], "end_at_step")] = source[0]
            found[(node_id, "start_at_step")] = source[0]
    return found


def _left_out(
    item: _Input, graph: Mapping[str, Any], handoffs: Mapping[tuple[str, str], str]
) -> bool:
    if item.name in LEFT_OUT_NAMES or item.name in PLUMBING_NAMES:
        return True
    if (item.class_type, item.name) in PLUMBING_INPUTS:
        return True
    if (item.node_id, item.name) in handoffs:
        return False
    # The open ends of a schedule say "from the start" and "to the end", not a setting.
    if item.name == "start_at_step" and item.value == 0:
        return True
    steps = graph[item.node_id]["inputs"].get("steps")
    return item.name == "end_at_step" and isinstance(steps, int) and item.value >= steps


def _is_seed(item: _Input) -> bool:
    flagged = extra_info(item.spec).get("control_after_generate") is True
    return item.kind == "INT" and (item.name in _SEED_NAMES or flagged)


def _meaning(
    item: _Input,
    graph: Mapping[str, Any],
    object_info: Mapping[str, Any],
    handoffs: Mapping[tuple[str, str], str],
) -> Key:
    """Inputs with equal keys are bound to one parameter."""
    value = json.dumps(item.value, sort_keys=True)
    if (item.node_id, item.name) in handoffs:
        return ("switch_step", handoffs[(item.node_id, item.name)])
    if _is_seed(item):
        return ("seed",)
    if item.name in SHARED_NAMES:
        return ("shared", item.name, item.kind, value)
    multiline = item.kind == "STRING" and extra_info(item.spec).get("multiline") is True
    if multiline and "CONDITIONING" in _outputs(object_info, item.class_type):
        return ("prompt", _prompt_role(item.node_id, graph, object_info), value)
    inputs = graph[item.node_id]["inputs"]
    paired = inputs.get("strength_model") == inputs.get("strength_clip")
    if item.name in ("strength_model", "strength_clip") and paired:
        return ("strength", item.node_id, item.class_type)
    return ("input", item.node_id, item.name)


def _outputs(object_info: Mapping[str, Any], class_type: str) -> list[str]:
    outputs = object_info[class_type].get("output") or []
    return [str(output) for output in outputs]


def _prompt_role(node_id: str, graph: Mapping[str, Any], object_info: Mapping[str, Any]) -> str:
    """negative_prompt when the text's conditioning reaches a `negative` input, through any
    nodes that pass conditioning on; else prompt."""
    consumers: dict[str, list[tuple[str, str]]] = {}
    for consumer_id, node in graph.items():
        for name, value in node["inputs"].items():
            if _is_link(value):
                consumers.setdefault(value[0], []).append((consumer_id, name))
    seen, todo = {node_id}, [node_id]
    while todo:
        for consumer_id, name in consumers.get(todo.pop(), []):
            if name == "negative":
                return "negative_prompt"
            passes_on = "CONDITIONING" in _outputs(object_info, graph[consumer_id]["class_type"])
            if passes_on and consumer_id not in seen:
                seen.add(consumer_id)
                todo.append(consumer_id)
    return "prompt"


# --- names ----------------------------------------------------------------------------------


def snake(text: str) -> str:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", text)
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")[:_LABEL_MAX] or "node"


def _node_labels(graph: Mapping[str, Any], order: Sequence[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    used: dict[str, int] = {}
    for node_id in order:
        node = graph[node_id]
        meta = node.get("_meta")
        title = meta.get("title") if isinstance(meta, Mapping) else None
        base = snake(title if isinstance(title, str) and title else node["class_type"])
        used[base] = used.get(base, 0) + 1
        labels[node_id] = base if used[base] == 1 else f"{base}_{used[base]}"
    return labels


def _base_name(key: Key, first: _Input) -> str:
    if key[0] in ("seed", "switch_step"):
        return key[0]
    if key[0] == "prompt":
        return key[1]
    if key[0] == "strength":
        return "lora_strength" if "lora" in first.class_type.lower() else "strength"
    return FRIENDLY_NAMES.get(first.name, first.name)


def _names(groups: Mapping[Key, list[_Input]], labels: Mapping[str, str]) -> dict[Key, str]:
    bases = {key: _base_name(key, members[0]) for key, members in groups.items()}
    counts: dict[str, int] = {}
    for base in bases.values():
        counts[base] = counts.get(base, 0) + 1
    names: dict[Key, str] = {}
    taken: set[str] = set()
    for key, base in bases.items():
        first = groups[key][0]
        if counts[base] == 1:
            name = base
        else:
            plain = key[0] in ("shared", "input")
            name = f"{labels[first.node_id]}.{first.name if plain else base}"
        # Two groups of one node could still meet; number rather than collide.
        candidate, number = name, 2
        while candidate in taken:
            candidate, number = f"{name}_{number}", number + 1
        taken.add(candidate)
        names[key] = candidate
    return names


# --- properties -----------------------------------------------------------------------------


def _property(key: Key, members: Sequence[_Input]) -> dict[str, Any]:
    first = members[0]
    prop: dict[str, Any] = {}
    if key[0] == "seed":
        prop.update(_integer(members, seed=True))
        prop["description"] = "Noise seed: the same seed and settings give the same image."
    elif first.kind == "INT":
        prop.update(_integer(members, seed=False))
    elif first.kind == "FLOAT":
        prop.update(_number(members))
    elif first.kind == "BOOLEAN":
        prop.update({"type": "boolean", "default": first.value})
    elif first.kind == "STRING":
        prop.update(_string(first, role=key[1] if key[0] == "prompt" else None))
    else:
        prop.update(_combo(members))
    tooltip = extra_info(first.spec).get("tooltip")
    prop.setdefault("description", tooltip if isinstance(tooltip, str) else _about(members))
    soft = _soft_range(first, prop)
    if soft is not None:
        prop["x-sweep-range"] = soft
    prop["x-comfy"] = [{"node": m.node_id, "input": m.name} for m in members]
    return prop


def _about(members: Sequence[_Input]) -> str:
    places = ", ".join(f"{m.name} of node {m.node_id} ({m.class_type})" for m in members)
    return f"Drives {places}."


def _bounds(members: Sequence[_Input]) -> tuple[float | None, float | None]:
    """The narrowest bounds all members' specs allow (None: unbounded)."""
    lows = [_limit(m, "min") for m in members]
    highs = [_limit(m, "max") for m in members]
    low = max((v for v in lows if v is not None), default=None)
    high = min((v for v in highs if v is not None), default=None)
    return low, high


def _limit(member: _Input, key: str) -> float | None:
    value = extra_info(member.spec).get(key)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return None


def _integer(members: Sequence[_Input], *, seed: bool) -> dict[str, Any]:
    low, high = _bounds(members)
    value = members[0].value
    prop: dict[str, Any] = {
        "type": "integer",
        "default": value,
        "minimum": max(int(low), -SAFE_INT) if low is not None else -SAFE_INT,
        "maximum": min(int(high), SAFE_INT) if high is not None else SAFE_INT,
    }
    step = extra_info(members[0].spec).get("step")
    # A step above 1 is a real constraint (latent sizes in multiples of 8); only kept when
    # the graph's own value honours it, or the draft would break its own default.
    if not seed and isinstance(step, int) and step > 1 and value % step == 0:
        prop["multipleOf"] = step
    return prop


def _number(members: Sequence[_Input]) -> dict[str, Any]:
    # No multipleOf: a FLOAT's step is the UI's nudge; ComfyUI rounds, it does not refuse.
    low, high = _bounds(members)
    prop: dict[str, Any] = {"type": "number", "default": members[0].value}
    if low is not None:
        prop["minimum"] = low
    if high is not None:
        prop["maximum"] = high
    return prop


def _string(first: _Input, *, role: str | None) -> dict[str, Any]:
    multiline = extra_info(first.spec).get("multiline") is True
    limit = PROMPT_MAX_LENGTH if multiline else TEXT_MAX_LENGTH
    prop: dict[str, Any] = {
        "type": "string",
        "default": first.value,
        "maxLength": max(limit, len(first.value)),
    }
    if role is not None:
        prop["description"] = _ROLE_DESCRIPTIONS[role]
    return prop


def _combo(members: Sequence[_Input]) -> dict[str, Any]:
    value = members[0].value
    options = list(combo_options(members[0].spec))
    for member in members[1:]:
        others = set(map(_hashable, combo_options(member.spec)))
        options = [option for option in options if _hashable(option) in others]
    file_like = any(isinstance(o, str) and _FILE_LIKE.search(o) for o in options)
    if options and not file_like and value in options:
        return {"type": _json_type(value), "default": value, "enum": options}
    if isinstance(value, str) and _FILE_RE.match(value):
        # Model files differ from one pool to the next; a pattern keeps the contract portable
        # and preflight checks the file against each instance.
        prop: dict[str, Any] = {
            "type": "string",
            "default": value,
            "minLength": 1,
            "maxLength": 255,
            "pattern": FILE_PATTERN,
        }
        if options:
            prop["examples"] = options[:20]
        return prop
    return {"type": _json_type(value), "default": value}


def _hashable(value: object) -> object:
    return json.dumps(value, sort_keys=True)


def _json_type(value: object) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string"


def _soft_range(first: _Input, prop: Mapping[str, Any]) -> dict[str, float] | None:
    soft = SOFT_RANGES.get((first.class_type, first.name))
    if soft is None or prop.get("type") not in ("integer", "number"):
        return None
    low, high = soft
    if "minimum" in prop:
        low = max(low, prop["minimum"])
    if "maximum" in prop:
        high = min(high, prop["maximum"])
    if low >= high:
        return None
    if prop["type"] == "integer":
        return {"minimum": int(low), "maximum": int(high)}
    return {"minimum": low, "maximum": high}


def draft_from_document(
    document: Mapping[str, Any],
    object_info: Mapping[str, Any],
    *,
    title: str = "Drafted contract",
    loc: Loc = ("graph",),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(contract, API graph) for a workflow in either format; the UI format ("Save") is
    told by its `nodes` list and converted first."""
    graph = (
        dict(ui_to_api(document, object_info, loc=loc))
        if is_ui_format(document)
        else dict(document)
    )
    return draft_contract(graph, object_info, title=title, loc=loc), graph
