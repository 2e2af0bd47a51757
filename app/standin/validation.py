"""`POST /prompt` validation with ComfyUI's error types, messages and quirks.

Mirrors `validate_prompt`/`validate_inputs` in ComfyUI's execution.py: only nodes reachable
from output nodes are checked; a failing upstream node carries the errors while the outputs
that depend on it are listed in `dependent_outputs`; a link to a missing node surfaces as
`exception_during_inner_validation` on the node *holding* the link, with the KeyError's text.
Widget values are converted in place (`"3"` -> 3 for an INT), as ComfyUI does before queueing.
"""

from __future__ import annotations

import copy
import math
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, cast

from app.standin.graph import (
    Graph,
    JsonObject,
    JsonValue,
    as_link,
    class_type_of,
    node_inputs,
)
from app.standin.specs import InputSpec, NodeSpec

COMBO_LIST_LIMIT = 20  # longer option lists are not echoed back (ComfyUI: model file lists)


@dataclass
class Verdict:
    valid: bool
    errors: list[JsonValue] = field(default_factory=list)


@dataclass(frozen=True)
class Validation:
    ok: bool
    error: JsonObject | None
    outputs: list[str]
    node_errors: JsonObject


def _error(kind: str, message: str, details: str, extra_info: JsonObject) -> JsonObject:
    return {"type": kind, "message": message, "details": details, "extra_info": extra_info}


def _exception_info() -> tuple[str, list[JsonValue]]:
    typ, _, tb = sys.exc_info()
    name = "" if typ is None else typ.__qualname__
    module = "" if typ is None else typ.__module__
    full_name = name if module == "builtins" else f"{module}.{name}"
    return full_name, list(traceback.format_tb(tb))


def types_match(received: str, expected: str | list[JsonValue]) -> bool:
    """ComfyUI's `validate_node_input`: equal, or comma-separated type sets that overlap."""
    if not isinstance(expected, str):
        return False
    if received == expected:
        return True
    return bool({t.strip() for t in received.split(",")} & {t.strip() for t in expected.split(",")})


def _convert(input_type: str | list[JsonValue], value: JsonValue) -> JsonValue:
    loose = cast(Any, value)
    if input_type == "INT":
        return int(loose)
    if input_type == "FLOAT":
        return float(loose)
    if input_type == "STRING":
        return str(value)
    if input_type == "BOOLEAN":
        return bool(value)
    return value


def _check_range(spec: InputSpec, value: JsonValue) -> JsonObject | None:
    received: Any = value
    extra: JsonObject = {
        "input_name": spec.name,
        "input_config": spec.wire_config,
        "received_value": value,
    }
    if "min" in spec.config and received < spec.config["min"]:
        message = f"Value {value} smaller than min of {spec.config['min']}"
        return _error("value_smaller_than_min", message, spec.name, extra)
    if "max" in spec.config and received > spec.config["max"]:
        message = f"Value {value} bigger than max of {spec.config['max']}"
        return _error("value_bigger_than_max", message, spec.name, extra)
    return None


def _check_combo(spec: InputSpec, value: JsonValue) -> JsonObject | None:
    # Only old-style COMBOs (the type *is* the list) are checked at submission; new-style
    # `"COMBO"` inputs pass and fail at execution (capture post_prompt_bad_combo).
    if not isinstance(spec.type, list) or value in spec.type:
        return None
    config: JsonValue = spec.wire_config
    list_info = str(spec.type)
    if len(spec.type) > COMBO_LIST_LIMIT:
        list_info, config = f"(list of length {len(spec.type)})", None
    extra: JsonObject = {"input_name": spec.name, "input_config": config, "received_value": value}
    return _error(
        "value_not_in_list",
        "Value not in list",
        f"{spec.name}: '{value}' not in {list_info}",
        extra,
    )


def check_widget(inputs: JsonObject, spec: InputSpec) -> JsonObject | None:
    """Convert a literal input in place and check its range and options."""
    value = inputs[spec.name]
    if isinstance(value, dict) and "__value__" in value:
        value = inputs[spec.name] = value["__value__"]
    try:
        value = _convert(spec.type, value)
    except Exception as ex:
        extra: JsonObject = {
            "input_name": spec.name,
            "input_config": spec.wire_config,
            "received_value": value,
            "exception_message": str(ex),
        }
        message = f"Failed to convert an input value to a {spec.type} value"
        return _error("invalid_input_type", message, f"{spec.name}, {value}, {ex}", extra)
    inputs[spec.name] = value
    return _check_range(spec, value) or _check_combo(spec, value)


class _Validator:
    """One prompt's validation; `validated` memoises verdicts per node like ComfyUI's."""

    def __init__(self, graph: Graph, specs: dict[str, NodeSpec]) -> None:
        self.graph = graph
        self.specs = specs
        self.validated: dict[str, Verdict] = {}
        self._in_progress: set[str] = set()

    def validate(self, node_id: str) -> Verdict:
        if node_id in self.validated:
            return self.validated[node_id]
        if node_id in self._in_progress:
            raise RecursionError(f"dependency cycle through node {node_id!r}")
        self._in_progress.add(node_id)
        try:
            verdict = self._check_node(node_id)
        finally:
            self._in_progress.discard(node_id)
        earlier = self.validated.get(node_id)  # set by a failure found inside a cycle
        if earlier is not None:
            verdict = Verdict(False, earlier.errors + verdict.errors)
        self.validated[node_id] = verdict
        return verdict

    def _check_node(self, node_id: str) -> Verdict:
        inputs = node_inputs(self.graph, node_id)
        spec = self.specs[class_type_of(self.graph, node_id)]
        verdict = Verdict(True)
        for input_spec in spec.inputs:
            if input_spec.name not in inputs:
                if input_spec.category == "required":
                    extra: JsonObject = {"input_name": input_spec.name}
                    error = _error(
                        "required_input_missing",
                        "Required input is missing",
                        input_spec.name,
                        extra,
                    )
                    verdict.errors.append(error)
                continue
            value = inputs[input_spec.name]
            if isinstance(value, list):
                self._check_link(input_spec, value, verdict)
            else:
                problem = check_widget(inputs, input_spec)
                if problem is not None:
                    verdict.errors.append(problem)
        verdict.valid = verdict.valid and not verdict.errors
        return verdict

    def _check_link(self, spec: InputSpec, link: list[JsonValue], verdict: Verdict) -> None:
        if len(link) != 2:
            extra: JsonObject = {
                "input_name": spec.name,
                "input_config": spec.wire_config,
                "received_value": link,
            }
            message = "Bad linked input, must be a length-2 list of [node_id, slot_index]"
            verdict.errors.append(_error("bad_linked_input", message, spec.name, extra))
            return
        source_id = cast(str, link[0])
        # KeyError for a missing node, IndexError for a bad slot: raised to the caller, which
        # reports it on this node, exactly where ComfyUI's unguarded lookups put it.
        source_class = class_type_of(self.graph, source_id)
        received = self.specs[source_class].outputs[cast(int, link[1])]
        if not types_match(received, spec.type):
            extra = {
                "input_name": spec.name,
                "input_config": spec.wire_config,
                "received_type": received,
                "linked_node": link,
            }
            details = f"{spec.name}, received_type({received}) mismatch input_type({spec.type})"
            message = "Return type mismatch between linked nodes"
            verdict.errors.append(_error("return_type_mismatch", message, details, extra))
            return
        try:
            upstream = self.validate(source_id)
        except Exception as ex:
            exception_type, tb = _exception_info()
            extra = {
                "input_name": spec.name,
                "input_config": spec.wire_config,
                "exception_message": str(ex),
                "exception_type": exception_type,
                "traceback": tb,
                "linked_node": link,
            }
            message = "Exception when validating inner node"
            reason = _error("exception_during_inner_validation", message, str(ex), extra)
            self.validated[source_id] = Verdict(False, [reason])
            verdict.valid = False
            return
        if not upstream.valid:
            verdict.valid = False


def _whole_prompt_error(kind: str, message: str, details: str) -> Validation:
    return Validation(False, _error(kind, message, details, {}), [], {})


def _find_outputs(
    graph: Graph, specs: dict[str, NodeSpec], targets: list[str] | None
) -> Validation | list[str]:
    outputs: list[str] = []
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return _whole_prompt_error("invalid_prompt", message, f"Node ID '#{node_id}'")
        class_type = node["class_type"]
        spec = specs.get(class_type) if isinstance(class_type, str) else None
        if spec is None:
            message = f"Cannot execute because node {class_type} does not exist."
            return _whole_prompt_error("invalid_prompt", message, f"Node ID '#{node_id}'")
        if spec.output_node and (targets is None or node_id in targets):
            outputs.append(node_id)
    if not outputs:
        return _whole_prompt_error("prompt_no_outputs", "Prompt has no outputs", "")
    return outputs


def _validate_output(validator: _Validator, output_id: str) -> Verdict:
    try:
        return validator.validate(output_id)
    except Exception as ex:
        exception_type, tb = _exception_info()
        extra: JsonObject = {"exception_type": exception_type, "traceback": tb}
        reason = _error(
            "exception_during_validation", "Exception when validating node", str(ex), extra
        )
        verdict = validator.validated[output_id] = Verdict(False, [reason])
        return verdict


def _collect_node_errors(
    graph: Graph, validator: _Validator, output_id: str, node_errors: JsonObject
) -> None:
    # As in ComfyUI, every failing node validated so far gains this output as a dependant.
    for node_id, verdict in validator.validated.items():
        if verdict.valid or not verdict.errors:
            continue
        if node_id not in node_errors:
            node_errors[node_id] = {
                "errors": verdict.errors,
                "dependent_outputs": [],
                "class_type": class_type_of(graph, node_id),
            }
        entry = cast(JsonObject, node_errors[node_id])
        cast(list[JsonValue], entry["dependent_outputs"]).append(output_id)


def _validate_outputs(
    graph: Graph, specs: dict[str, NodeSpec], outputs: list[str]
) -> tuple[list[str], list[JsonValue], JsonObject]:
    """The outputs that pass, the failed outputs' own reasons, and `node_errors`."""
    validator = _Validator(graph, specs)
    good: list[str] = []
    failed_reasons: list[JsonValue] = []
    node_errors: JsonObject = {}
    for output_id in outputs:
        verdict = _validate_output(validator, output_id)
        if verdict.valid:
            good.append(output_id)
            continue
        failed_reasons += verdict.errors
        _collect_node_errors(graph, validator, output_id, node_errors)
    return good, failed_reasons, node_errors


def _failed(failed_reasons: list[JsonValue], node_errors: JsonObject) -> Validation:
    details = "\n".join(
        f"{cast(JsonObject, e)['message']}: {cast(JsonObject, e)['details']}"
        for e in failed_reasons
    )
    error = _error(
        "prompt_outputs_failed_validation", "Prompt outputs failed validation", details, {}
    )
    return Validation(False, error, [], node_errors)


def validate_prompt(
    graph: Graph, specs: dict[str, NodeSpec], targets: list[str] | None = None
) -> Validation:
    """Validate every output node (or only `targets`, ComfyUI's `partial_execution_targets`);
    the prompt is accepted if at least one of them is valid."""
    found = _find_outputs(graph, specs, targets)
    if isinstance(found, Validation):
        return found
    good, failed_reasons, node_errors = _validate_outputs(graph, specs, found)
    if good:
        return Validation(True, None, good, node_errors)
    return _failed(failed_reasons, node_errors)


def _upstream(graph: Graph, specs: dict[str, NodeSpec], outputs: list[str]) -> set[str]:
    """The nodes these (valid) outputs need, themselves included."""
    seen: set[str] = set()
    stack = list(outputs)
    while stack:
        node_id = stack.pop()
        if node_id in seen:
            continue
        seen.add(node_id)
        inputs = node_inputs(graph, node_id)
        for spec in specs[class_type_of(graph, node_id)].inputs:
            link = as_link(inputs.get(spec.name))
            if link is not None:
                stack.append(link.node_id)
    return seen


def _beyond_max(spec: InputSpec) -> int | float:
    limit = cast(int | float, spec.config["max"])
    if spec.type == "INT":
        return int(limit) + 1
    value = float(limit) + 1.0
    return value if value > limit else math.nextafter(float(limit), math.inf)


def _first_bounded_number(
    graph: Graph, specs: dict[str, NodeSpec], needed: set[str]
) -> tuple[str, InputSpec] | None:
    """The first needed node (graph order) with a literal INT/FLOAT input that has a max, and
    that input (the node's object_info order)."""
    for node_id in graph:
        if node_id not in needed:
            continue
        inputs = node_inputs(graph, node_id)
        for spec in specs[class_type_of(graph, node_id)].inputs:
            limit = spec.config.get("max")
            if (
                spec.type in ("INT", "FLOAT")
                and spec.name in inputs
                and not isinstance(inputs[spec.name], list)
                and isinstance(limit, int | float)
                and not isinstance(limit, bool)
            ):
                return node_id, spec
    return None


def reject_out_of_range(
    graph: Graph,
    specs: dict[str, NodeSpec],
    targets: list[str] | None,
    accepted: list[str],
) -> Validation | None:
    """ComfyUI's refusal of this (valid) prompt had its first literal INT/FLOAT input been
    above its max (`value_bigger_than_max`), for the `reject` fault; None if it has none.

    Only nodes the `accepted` outputs need are candidates. The input is set to max + 1 in a copy
    that is validated again, so `dependent_outputs`, `details` and any other failing outputs are
    what ComfyUI would report. The answer is a refusal even if some output does not depend on
    that node (ComfyUI would then queue the rest).
    """
    working = copy.deepcopy(graph)
    found = _first_bounded_number(working, specs, _upstream(working, specs, accepted))
    if found is None:
        return None
    node_id, spec = found
    node_inputs(working, node_id)[spec.name] = _beyond_max(spec)
    outputs = _find_outputs(working, specs, targets)
    if isinstance(outputs, Validation):  # cannot happen: the graph was valid
        return outputs
    _, failed_reasons, node_errors = _validate_outputs(working, specs, outputs)
    return _failed(failed_reasons, node_errors)
