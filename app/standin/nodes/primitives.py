"""Primitive value nodes and string helpers: they pass widget values on as outputs."""

from __future__ import annotations

from app.standin.nodes.base import NodeCall, NodeFunction, NodeResult


def _passthrough(call: NodeCall) -> NodeResult:
    return NodeResult((call.inputs["value"],))


def string_concatenate(call: NodeCall) -> NodeResult:
    joined = call.text("delimiter", "").join((call.text("string_a"), call.text("string_b")))
    return NodeResult((joined,))


PRIMITIVE_NODES: dict[str, NodeFunction] = {
    "PrimitiveInt": _passthrough,
    "PrimitiveFloat": _passthrough,
    "PrimitiveString": _passthrough,
    "PrimitiveBoolean": _passthrough,
    "StringConcatenate": string_concatenate,
}
