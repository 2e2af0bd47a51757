"""ComfyUI's answers to a rejected `POST /prompt`, as one `RunError` a user can act on.

The first node error names the node, its class_type and the input (ComfyUI's
`extra_info.input_name`); every node error is kept, one per line, in `details`. Whole-prompt
errors (`invalid_prompt` for an unknown class_type, `prompt_no_outputs`) carry no node_errors,
so the node is recovered from the message details and the submitted graph.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from app.comfy.errors import RunError
from app.comfy.protocol import NodeError, NodeErrorItem, PromptErrorBody, PromptRejected


def rejection_error(rejected: PromptRejected, graph: Mapping[str, Any]) -> RunError:
    """The first node error (every one kept in `details`), else the whole-prompt error."""
    if rejected.node_errors:
        return _node_rejection(rejected.node_errors)
    error = rejected.error
    if not isinstance(error, PromptErrorBody):
        return RunError(kind="validation", message=error or "ComfyUI rejected the prompt")
    node_id = _node_id_in(error.details)
    return RunError(
        kind="validation",
        message=error.message or error.type or "ComfyUI rejected the prompt",
        node_id=node_id,
        class_type=_class_type_of(graph, node_id),
        details=f"{error.type}: {error.details}" if error.details else error.type or None,
    )


def _node_rejection(node_errors: dict[str, NodeError]) -> RunError:
    node_id, node = next(iter(node_errors.items()))
    first = node.errors[0] if node.errors else NodeErrorItem(message="node failed validation")
    lines = [
        _describe(other_id, other.class_type, item)
        for other_id, other in node_errors.items()
        for item in other.errors
    ]
    return RunError(
        kind="validation",
        message=first.message or first.type,
        node_id=node_id,
        class_type=node.class_type,
        input_name=first.extra_info.input_name,
        details="\n".join(lines) or None,
    )


def _describe(node_id: str, class_type: str | None, item: NodeErrorItem) -> str:
    info = item.extra_info
    parts = [f"node {node_id}" + (f" ({class_type})" if class_type else "")]
    if info.input_name:
        parts.append(f"input {info.input_name}")
    parts.append(f"{item.type}: {item.message}")
    if item.details:
        parts.append(item.details)
    elif info.exception_type:
        parts.append(f"{info.exception_type}: {info.exception_message}")
    if info.received_value is not None:
        parts.append(f"received {json.dumps(info.received_value)}")
    return ", ".join(parts)


def _node_id_in(details: str) -> str | None:
    # execution.py's invalid_prompt for an unknown class_type: details "Node ID '#2'".
    prefix = "Node ID '"
    if not details.startswith(prefix) or not details.endswith("'"):
        return None
    return details[len(prefix) : -1].removeprefix("#") or None


def _class_type_of(graph: Mapping[str, Any], node_id: str | None) -> str | None:
    node = graph.get(node_id) if node_id is not None else None
    class_type = node.get("class_type") if isinstance(node, Mapping) else None
    return class_type if isinstance(class_type, str) else None
