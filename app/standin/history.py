"""Finished prompts by prompt_id, in memory and capped like ComfyUI's (oldest dropped first)."""

from __future__ import annotations

import copy
import threading

from app.standin.graph import JsonObject, JsonValue

MAXIMUM_HISTORY_SIZE = 10000
SENSITIVE_EXTRA_DATA_KEYS = ("auth_token_comfy_org", "api_key_comfy_org")


class History:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, JsonObject] = {}

    def add(self, prompt_id: str, entry: JsonObject) -> None:
        """Store a finished prompt; a re-used prompt_id replaces the earlier entry in place."""
        prompt = entry.get("prompt")
        if isinstance(prompt, list) and len(prompt) > 3 and isinstance(prompt[3], dict):
            for key in SENSITIVE_EXTRA_DATA_KEYS:
                prompt[3].pop(key, None)
        with self._lock:
            if len(self._entries) > MAXIMUM_HISTORY_SIZE:
                self._entries.pop(next(iter(self._entries)))
            self._entries[prompt_id] = entry

    def get(self, prompt_id: str) -> JsonObject:
        with self._lock:
            entry = self._entries.get(prompt_id)
            return {} if entry is None else {prompt_id: copy.deepcopy(entry)}

    def recent(self, max_items: int | None, offset: int | None) -> JsonObject:
        """ComfyUI's paging: `max_items` alone gives the newest N, oldest first."""
        with self._lock:
            keys = list(self._entries)
            start = offset if offset is not None and offset >= 0 else -1
            if start < 0 and max_items is not None:
                start = len(keys) - max_items
            selected = keys[max(start, 0) :]
            if max_items is not None:
                selected = selected[: max(max_items, 0)]
            out: dict[str, JsonValue] = {k: copy.deepcopy(self._entries[k]) for k in selected}
            return out

    def delete(self, prompt_id: str) -> None:
        with self._lock:
            self._entries.pop(prompt_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries = {}
