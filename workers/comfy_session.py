"""One event loop and one keep-alive ComfyUI client per instance for the life of a worker
process, instead of a new loop, TLS context and TCP connections for every run."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from app.comfy.client import ComfyClient

T = TypeVar("T")


class ComfySession:
    """Created lazily in each worker process (after the fork); never shared across processes."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, ComfyClient] = {}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
            self._clients.clear()
        return self._loop.run_until_complete(coroutine)

    def client(self, base_url: str) -> ComfyClient:
        """The keep-alive client for an instance; only valid inside `run`."""
        if base_url not in self._clients:
            self._clients[base_url] = ComfyClient(base_url)
        return self._clients[base_url]
