"""JSON values and the API-format prompt graph: node lookup, links, and topological planning."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
JsonObject = dict[str, JsonValue]
Graph = dict[str, JsonValue]  # node_id -> {"class_type": str, "inputs": {...}, ...}, kept as sent


@dataclass(frozen=True)
class Link:
    """An input wired to another node's output: `["4", 0]` on the wire."""

    node_id: str
    output_index: int


def as_link(value: JsonValue) -> Link | None:
    """ComfyUI's `is_link`: a two-element list of a string node id and an integer slot."""
    if (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    ):
        return Link(value[0], value[1])
    return None


def node_object(graph: Graph, node_id: str) -> JsonObject:
    """The node's JSON object; a KeyError or TypeError here is what ComfyUI reports too."""
    node = graph[node_id]
    if not isinstance(node, dict):
        raise TypeError(f"node {node_id!r} is not an object")
    return node


def node_inputs(graph: Graph, node_id: str) -> JsonObject:
    inputs = node_object(graph, node_id)["inputs"]
    if not isinstance(inputs, dict):
        raise TypeError(f"inputs of node {node_id!r} are not an object")
    return inputs


def class_type_of(graph: Graph, node_id: str) -> str:
    class_type = node_object(graph, node_id)["class_type"]
    return class_type if isinstance(class_type, str) else str(class_type)


def plan_execution(
    graph: Graph,
    outputs: Iterable[str],
    input_order: Mapping[str, list[str]],
    is_cached: Mapping[str, bool],
) -> list[str]:
    """Nodes to visit, dependencies first, for the given output nodes.

    Like ComfyUI's ExecutionList: an output node is always visited (a cached one reports its
    earlier result), an upstream node only if it is not cached; nothing above a hit runs.
    """
    order: list[str] = []
    seen: set[str] = set()

    def visit(node_id: str) -> None:
        seen.add(node_id)
        if not is_cached.get(node_id, False):
            inputs = node_inputs(graph, node_id)
            for name in input_order.get(class_type_of(graph, node_id), list(inputs)):
                link = as_link(inputs.get(name))
                if link is None or link.node_id in seen or link.node_id not in graph:
                    continue
                if not is_cached.get(link.node_id, False):
                    visit(link.node_id)
        order.append(node_id)

    for output_id in outputs:
        if output_id not in seen:
            visit(output_id)
    return order
