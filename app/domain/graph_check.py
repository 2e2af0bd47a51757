"""Checks a workflow graph against one instance's `/object_info` before any GPU time is spent.

Owns the rules ComfyUI applies to a whole graph in `execution.py` `validate_inputs`: node
classes exist, required inputs are present, and links land on an output of a matching type;
each literal value is checked by `app.domain.input_rules`. Problems are named as in ComfyUI's
`node_errors`. Pure: no I/O; `object_info` is whatever the pool fetched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.domain.input_rules import InputFault, InputRule, show_value
from app.domain.input_specs import InputSpec, declared_inputs, input_kind


@dataclass(frozen=True)
class NodeProblem:
    """One input (or node) ComfyUI would refuse, named as in its `node_errors`."""

    node_id: str
    class_type: str
    input_name: str | None  # None when the whole node is at fault (missing_node_type)
    type: str
    message: str  # a full sentence naming the node, its class and the input
    received: object = None


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
) -> InputFault | None:
    if len(link) != 2:
        return "bad_linked_input", f"a link is [node_id, output_index], got {show_value(link)}"
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
    received, expected = _output_type(outputs[index]), input_kind(spec)
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
    specs = declared_inputs(info)
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
) -> InputFault | None:
    if isinstance(value, Mapping) and "__value__" in value:
        value = value["__value__"]  # ComfyUI unwraps a list widget value sent this way
    elif isinstance(value, list | tuple):  # API format: any list is a link
        return _link_problem(graph, object_info, spec, value)
    return InputRule(name, spec).problem(value)
