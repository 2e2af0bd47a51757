"""One event loop and one keep-alive ComfyUI client per instance for the life of a worker
process, instead of a new loop, TLS context and TCP connections for every run."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from app.comfy.client import ComfyClient

T = TypeVar("T")


class ComfySession:
    """Created lazily in each worker process (after the fork); never shared across processes."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, ComfyClient] = {}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        elif self._loop.is_closed():
            # The clients' connections belonged to the closed loop.
            self._loop = asyncio.new_event_loop()
            self._clients.clear()
        return self._loop.run_until_complete(coroutine)

    def close(self) -> None:
        """Close every client's connections, then the loop."""
        if self._loop is not None and not self._loop.is_closed():
            for client in self._clients.values():
                self._loop.run_until_complete(client.aclose())
            self._loop.close()
        self._clients.clear()

    @property
    def clients(self) -> Mapping[str, ComfyClient]:
        return MappingProxyType(self._clients)

    def client(self, base_url: str) -> ComfyClient:
        """The keep-alive client for an instance; use it only inside `run`."""
        if base_url not in self._clients:
            self._clients[base_url] = ComfyClient(base_url)
        return self._clients[base_url]
