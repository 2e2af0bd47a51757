"""Writes a run's values into a UI-format workflow (ComfyUI's "Save" format), so the `workflow`
chunk of an output reloads in ComfyUI with exactly the values that made it. Pure: no I/O.

A UI node keeps its widget values as a positional list, `widgets_values`, in the order the
node declares its widget inputs in `/object_info` (`input_order`, required then optional).
The frontend adds one extra slot after an input with `control_after_generate` (the
"randomize/fixed" switch; legacy frontends did so for any INT named seed or noise_seed). A
node is patched only when that derivation accounts for every slot it has; otherwise (custom
widgets, dict-shaped values, a node unknown to the pool) it is left exactly as registered.
UI node ids are the API graph's node ids (ComfyUI's "Export (API)" keeps them), and a node is
patched only when both agree on its class.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

# Input types the frontend draws as a widget; any other type is a socket only.
_WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})
_LEGACY_SEED_NAMES = frozenset({"seed", "noise_seed"})


def widget_slots(node_info: Mapping[str, Any]) -> list[str | None]:
    """The input each `widgets_values` position holds, None for a control slot."""
    slots: list[str | None] = []
    declared = node_info.get("input") or {}
    order = node_info.get("input_order") or {}
    for section in ("required", "optional"):
        specs = declared.get(section) or {}
        for name in order.get(section) or list(specs):
            spec = specs.get(name)
            if not _is_widget(spec):
                continue
            slots.append(name)
            if _has_control(name, spec):
                slots.append(None)
    return slots


def _is_widget(spec: object) -> bool:
    if not isinstance(spec, list | tuple) or not spec:
        return False
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    if options.get("forceInput"):
        return False
    # A list of options is the legacy spelling of a COMBO.
    return isinstance(kind, list) or kind in _WIDGET_TYPES


def _has_control(name: str, spec: Any) -> bool:
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], Mapping) else {}
    if "control_after_generate" in options:
        return bool(options["control_after_generate"])
    return spec[0] == "INT" and name in _LEGACY_SEED_NAMES


def patch_ui_graph(
    ui_graph: Mapping[str, Any],
    prompt: Mapping[str, Any],
    inputs: Iterable[tuple[str, str]],
    object_info: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A copy of `ui_graph` whose widgets hold `prompt`'s literal values at `inputs`
    ((node id, input name) pairs: the run's bound inputs). Unchanged without `object_info`."""
    patched: dict[str, Any] = copy.deepcopy(dict(ui_graph))
    nodes = patched.get("nodes")
    if object_info is None or not isinstance(nodes, list):
        return patched
    wanted: dict[str, set[str]] = {}
    for node_id, input_name in inputs:
        wanted.setdefault(node_id, set()).add(input_name)
    for node in nodes:
        if isinstance(node, dict) and str(node.get("id")) in wanted:
            node_id = str(node.get("id"))
            _patch_node(node, prompt.get(node_id), wanted[node_id], object_info)
    return patched


def _patch_node(
    node: dict[str, Any], api_node: object, names: set[str], object_info: Mapping[str, Any]
) -> None:
    values = node.get("widgets_values")
    if not isinstance(api_node, Mapping) or not isinstance(values, list):
        return
    class_type = api_node.get("class_type")
    info = object_info.get(str(class_type))
    if node.get("type") != class_type or not isinstance(info, Mapping):
        return
    slots = widget_slots(info)
    if len(slots) != len(values):
        return  # a layout we cannot derive: leave the node as registered
    api_inputs = api_node.get("inputs")
    if not isinstance(api_inputs, Mapping):
        return
    for position, name in enumerate(slots):
        if name in names and name in api_inputs and not isinstance(api_inputs[name], list):
            values[position] = api_inputs[name]
