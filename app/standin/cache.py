"""ComfyUI's default ("classic") output cache, keyed by input signature rather than node id.

A node's signature is its class_type and literal inputs plus, recursively, the same for every
ancestor, with links written as ("ANCESTOR", position, slot) so node ids do not matter
(comfy_execution/caching.py, CacheKeySetInputSignature). When a prompt starts, every entry
that no node of the new prompt can use is dropped, so the cache holds what the previous prompt
produced: consecutive prompts that share upstream nodes skip that work, A/B/A/B does not.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass

from app.standin.graph import Graph, JsonObject, JsonValue, as_link, class_type_of, node_inputs


@dataclass(frozen=True)
class CacheEntry:
    outputs: tuple[object, ...]
    ui: JsonObject | None  # the node's `output` for history and `executed`, if it has one


def _ancestry(graph: Graph, node_id: str) -> list[str]:
    """Ancestors in the deterministic order of sorted input names, depth first."""
    ancestors: list[str] = []

    def walk(current: str) -> None:
        inputs = _inputs_or_empty(graph, current)
        for name in sorted(inputs):
            link = as_link(inputs[name])
            if link is not None and link.node_id not in ancestors and link.node_id != node_id:
                ancestors.append(link.node_id)
                walk(link.node_id)

    walk(node_id)
    return ancestors


def _inputs_or_empty(graph: Graph, node_id: str) -> JsonObject:
    try:
        return node_inputs(graph, node_id)
    except (KeyError, TypeError):
        return {}


def _immediate(graph: Graph, node_id: str, order: dict[str, int]) -> JsonValue:
    if node_id not in graph:
        return ["<missing node>", node_id]  # never equal to anything cached: not cacheable
    inputs = _inputs_or_empty(graph, node_id)
    parts: list[JsonValue] = [class_type_of(graph, node_id)]
    for name in sorted(inputs):
        link = as_link(inputs[name])
        if link is not None:
            parts.append([name, ["ANCESTOR", order.get(link.node_id, -1), link.output_index]])
        else:
            parts.append([name, inputs[name]])
    return parts


def node_signature(graph: Graph, node_id: str) -> str:
    """A hex digest of the node's inputs and everything upstream, independent of node ids."""
    ancestors = _ancestry(graph, node_id)
    order = {ancestor: i for i, ancestor in enumerate(ancestors)}
    parts = [_immediate(graph, n, order) for n in [node_id, *ancestors]]
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def prompt_signatures(graph: Graph) -> dict[str, str]:
    return {node_id: node_signature(graph, node_id) for node_id in graph}


class OutputCache:
    """Outputs and UI results by signature; only the executor thread writes, `/free` clears."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, CacheEntry] = {}

    def keep_only(self, signatures: set[str]) -> None:
        """Drop what the starting prompt cannot use (ComfyUI's `clean_unused`)."""
        with self._lock:
            self._entries = {k: v for k, v in self._entries.items() if k in signatures}

    def get(self, signature: str) -> CacheEntry | None:
        with self._lock:
            return self._entries.get(signature)

    def put(self, signature: str, entry: CacheEntry) -> None:
        with self._lock:
            self._entries[signature] = entry

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
