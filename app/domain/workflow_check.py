"""Checks a workflow (API-format graph and its contract) without any pool: the rules that stop
start-up for a shipped file and refuse a registration through the API alike, and the content
hash that identifies one version of a workflow. Pure: no I/O.

Every problem names a JSON pointer into the graph or the contract, so a file error says
`workflows/x.api.json at /3/inputs/image` and an API error carries `loc`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.domain.contracts import Contract, ContractError, build_contract, check_bindings

# Far above any real workflow (big video graphs have a few hundred nodes); a graph beyond it
# is a mistake or an attack, and checking it against /object_info would cost seconds.
MAX_NODES = 2000
# Names appear in URLs and in ComfyUI's filename_prefix, so they stay plain.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


def is_workflow_name(text: str) -> bool:
    return _NAME.fullmatch(text) is not None


@dataclass(frozen=True)
class GraphFault:
    """One fault: `document` is "graph" or "contract", `pointer` a JSON pointer inside it."""

    document: str
    pointer: str
    message: str


def graph_faults(graph: Mapping[str, Any], max_nodes: int = MAX_NODES) -> list[GraphFault]:
    """What makes `graph` unusable as ComfyUI's API format, first fault per node."""
    if isinstance(graph.get("nodes"), list):
        # The UI format ("Save") lists nodes and links; only "Export (API)" can be queued.
        return [GraphFault("graph", "", "is ComfyUI's UI format; export it in API format")]
    if not graph:
        return [GraphFault("graph", "", "the workflow has no nodes")]
    if len(graph) > max_nodes:
        message = f"has {len(graph)} nodes; at most {max_nodes} are accepted"
        return [GraphFault("graph", "", message)]
    found = (_node_fault(graph, str(node_id), node) for node_id, node in graph.items())
    return [fault for fault in found if fault is not None]


def _node_fault(graph: Mapping[str, Any], node_id: str, node: object) -> GraphFault | None:
    pointer = f"/{escape_pointer(node_id)}"
    if not isinstance(node, Mapping):
        return GraphFault("graph", pointer, "a node must be an object")
    class_type = node.get("class_type")
    if not isinstance(class_type, str) or not class_type:
        return GraphFault("graph", f"{pointer}/class_type", "a node needs a class_type")
    inputs = node.get("inputs")
    if not isinstance(inputs, Mapping):
        return GraphFault("graph", f"{pointer}/inputs", "a node needs an inputs object")
    for input_name, value in inputs.items():
        if isinstance(value, list) and len(value) == 2 and value[0] not in graph:
            # ComfyUI reports this only as exception_during_inner_validation.
            where = f"{pointer}/inputs/{escape_pointer(str(input_name))}"
            message = f"links to node {value[0]!r}, which is not in the workflow"
            return GraphFault("graph", where, message)
    return None


def compile_workflow(
    name: str, graph: Mapping[str, Any], schema: Mapping[str, Any]
) -> Contract | list[GraphFault]:
    """The contract of a graph/schema pair, or every fault that keeps them apart: the graph's
    own, then the schema's (it must compile), then bindings the graph cannot honour."""
    faults = graph_faults(graph)
    if faults:
        return faults
    try:
        contract = build_contract(name, schema)
    except ContractError as error:
        return [GraphFault("contract", error.pointer, error.message)]
    unbound = check_bindings(contract, graph)
    if unbound:
        return [GraphFault("contract", pointer, message) for pointer, message in unbound]
    return contract


def content_hash(
    graph: Mapping[str, Any],
    contract: Mapping[str, Any],
    ui_graph: Mapping[str, Any] | None = None,
) -> str:
    """sha256 hex of the canonical JSON of the content. The UI source counts only when there is
    one, so re-registering it with another UI graph makes a new version instead of a no-op."""
    content: dict[str, Any] = {"graph": graph, "contract": contract}
    if ui_graph is not None:
        content["ui_graph"] = ui_graph
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def escape_pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def pointer_parts(pointer: str, *, indices: bool) -> list[str | int]:
    """A JSON pointer as `loc` items: "/properties/x/x-comfy/0" → ["properties", "x", ...].
    With `indices`, digit-only parts are array indices (a contract's `x-comfy` lists); a
    graph's node ids are digit strings and stay strings."""
    if not pointer:
        return []
    parts = [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]
    return [int(p) if indices and p.isdigit() and p == str(int(p)) else p for p in parts]
