"""Per-prompt node progress, announced as `progress_state` (all started nodes) and `progress`.

Follows comfy_execution/progress.py: a node enters as running 0.0/1.0 floats; sampler steps
set integer value/max; finishing sets value = max. A node that was only visited from the
cache enters at 0/1 integers and finishes at 1/1 (capture ws_run_all_cached). Events go to
the prompt's client, or to every socket when the prompt has no client_id, as in ComfyUI.
"""

from __future__ import annotations

from app.standin.events import EventHub
from app.standin.graph import JsonObject, JsonValue


class ProgressTracker:
    def __init__(self, hub: EventHub, prompt_id: str, client_id: str | None) -> None:
        self._hub = hub
        self._prompt_id = prompt_id
        self._client_id = client_id
        self._nodes: dict[str, JsonObject] = {}

    def _entry(self, node_id: str) -> JsonObject:
        if node_id not in self._nodes:
            self._nodes[node_id] = {"value": 0, "max": 1, "state": "pending"}
        return self._nodes[node_id]

    def start(self, node_id: str) -> None:
        self._entry(node_id).update({"state": "running", "value": 0.0, "max": 1.0})
        self._announce()

    def update(self, node_id: str, value: int, maximum: int) -> None:
        self._entry(node_id).update({"state": "running", "value": value, "max": maximum})
        self._announce()
        progress: JsonObject = {
            "value": value,
            "max": maximum,
            "prompt_id": self._prompt_id,
            "node": node_id,
        }
        self._hub.send("progress", progress, self._client_id)

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update({"state": "finished", "value": entry["max"]})
        self._announce()

    def _announce(self) -> None:
        nodes: dict[str, JsonValue] = {
            node_id: {
                "value": entry["value"],
                "max": entry["max"],
                "state": entry["state"],
                "node_id": node_id,
                "prompt_id": self._prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
            }
            for node_id, entry in self._nodes.items()
            if entry["state"] != "pending"
        }
        data: JsonObject = {"prompt_id": self._prompt_id, "nodes": nodes}
        self._hub.send("progress_state", data, self._client_id)
