"""How a node's inputs are declared in ComfyUI's `/object_info`, read as its validation reads them.

An input spec is a list whose first element is the type: INT, FLOAT, STRING, BOOLEAN, a link
type such as MODEL, or for a COMBO either the option list itself or the word "COMBO". Its
optional second element, ComfyUI's `extra_info`, holds settings such as `min`, `max` and
`options`. `app.domain.input_rules` checks literal values against a spec and
`app.domain.graph_check` checks links against it; both read specs only through here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

InputSpec = Sequence[Any]  # ["INT", {...}], [["a", "b"], {...}] or ["COMBO", {"options": [...]}]


def declared_inputs(info: Mapping[str, Any]) -> Mapping[str, InputSpec]:
    declared = info.get("input") or {}
    return {**(declared.get("optional") or {}), **(declared.get("required") or {})}


def input_kind(spec: InputSpec) -> str:
    """INT, FLOAT, STRING, BOOLEAN, COMBO, or a link type such as MODEL or "IMAGE,MASK"."""
    first = spec[0] if spec else "*"
    return "COMBO" if isinstance(first, list | tuple) else str(first)


def extra_info(spec: InputSpec) -> Mapping[str, Any]:
    extra = spec[1] if len(spec) > 1 else None
    return extra if isinstance(extra, Mapping) else {}


def combo_options(spec: InputSpec) -> Sequence[Any]:
    # Old-style nodes give the option list as the type itself; nodes written against the
    # newer comfy_api give the type "COMBO" and the list under `options`.
    first = spec[0] if spec else None
    if isinstance(first, list | tuple):
        return first
    options = extra_info(spec).get("options", [])
    return options if isinstance(options, list | tuple) else []
