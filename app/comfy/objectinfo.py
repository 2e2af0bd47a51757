"""A per-process TTL cache of `/object_info`, keyed by instance base URL.

`/object_info` is large (every node's inputs and COMBO lists, megabytes with many custom nodes)
and changes only when models or nodes are installed, so a process fetches it once per TTL per
instance. No asyncio locks: workers run each task in a fresh event loop (`asyncio.run`), and a
lock bound to an old loop would fail; two concurrent misses simply fetch twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from app.comfy.client import ComfyClient

log = logging.getLogger(__name__)


class ObjectInfoCache:
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._entries: dict[str, tuple[float, dict[str, Any]]] = {}

    async def get(self, client: ComfyClient) -> dict[str, Any]:
        """The instance's node specs, fetched through `client` when missing or expired."""
        key = client.base_url
        cached = self._entries.get(key)
        now = self._clock()
        if cached is not None and now - cached[0] < self._ttl_s:
            return cached[1]
        info = await client.object_info()
        self._entries[key] = (self._clock(), info)
        log.info("comfy.object_info_fetched instance=%s nodes=%d", client.instance, len(info))
        return info

    def invalidate(self, base_url: str | None = None) -> None:
        """Forget one instance (e.g. after it restarted with new nodes), or all of them."""
        if base_url is None:
            self._entries.clear()
        else:
            self._entries.pop(base_url.rstrip("/"), None)
