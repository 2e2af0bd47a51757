"""One event loop and one keep-alive ComfyUI client per instance for the life of a worker
process, instead of a new loop, TLS context and TCP connections for every run; one WebSocket
per instance shared by the prompts the process submits while it keeps taking runs
(`app.comfy.channel`); and the history entries of finished prompts, deleted on their
instance in batches."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Mapping
from types import MappingProxyType
from typing import Any, TypeVar

from app.comfy.channel import Channel
from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError

T = TypeVar("T")
log = logging.getLogger(__name__)

# History entries deleted per POST /history. ComfyUI keeps up to 10,000 finished prompts in
# memory; one request per run cost a worker about 2 ms of CPU, a tenth of what it spends on a
# run. A process that dies leaves at most this many behind, which ComfyUI's cap drops in time.
FORGET_BATCH = 16


class ComfySession:
    """Created lazily in each worker process (after the fork); never shared across processes."""

    def __init__(self, make_client: Callable[[str], ComfyClient] = ComfyClient) -> None:
        self._make_client = make_client
        self._loop: asyncio.AbstractEventLoop | None = None
        self._clients: dict[str, ComfyClient] = {}
        self._finished: dict[str, list[str]] = {}  # instance -> prompt ids to forget
        self._channels: dict[str, Channel] = {}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            self._loop = _new_loop()
        elif self._loop.is_closed():
            # The clients' connections and the channels' sockets belonged to the closed loop.
            self._loop = _new_loop()
            self._clients.clear()
            self._channels.clear()
        return self._loop.run_until_complete(coroutine)

    def close(self) -> None:
        """Forget what is still pending, close every client's connections, then the loop."""
        if self._loop is not None and not self._loop.is_closed():
            self.hang_up()
            for base_url in list(self._finished):
                self._loop.run_until_complete(self._forget_now(base_url))
            for client in self._clients.values():
                self._loop.run_until_complete(client.aclose())
            self._loop.close()
        self._clients.clear()

    async def channel(self, base_url: str) -> Channel:
        """The instance's channel for the next prompt: the one open, unless it is worn; use
        it only inside `run`."""
        channel = self._channels.get(base_url)
        if channel is not None and channel.worn:
            await channel.close()
            channel = None
        if channel is None:
            channel = self._channels[base_url] = self.client(base_url).channel()
        return channel

    def hang_up(self) -> None:
        """Close every channel, once the process takes no more runs for now: ComfyUI's
        broadcasts to a socket nobody reads would pile up."""
        channels = list(self._channels.values())
        self._channels.clear()
        if self._loop is None or self._loop.is_closed():
            return
        for channel in channels:
            if channel.connected:
                self._loop.run_until_complete(channel.close())

    async def forget(self, base_url: str, prompt_id: str) -> None:
        """Delete a finished prompt's history entry on its instance, with the next batch."""
        finished = self._finished.setdefault(base_url, [])
        finished.append(prompt_id)
        if len(finished) >= FORGET_BATCH:
            await self._forget_now(base_url)

    async def _forget_now(self, base_url: str) -> None:
        prompt_ids = self._finished.pop(base_url, [])
        if not prompt_ids:
            return
        try:
            await self.client(base_url).delete_history(prompt_ids)
        except ComfyError as failure:
            log.warning(
                "history_delete_failed prompts=%d error=%s", len(prompt_ids), failure.error.message
            )

    @property
    def clients(self) -> Mapping[str, ComfyClient]:
        return MappingProxyType(self._clients)

    def client(self, base_url: str) -> ComfyClient:
        """The keep-alive client for an instance; use it only inside `run`."""
        if base_url not in self._clients:
            self._clients[base_url] = self._make_client(base_url)
        return self._clients[base_url]


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (everywhere but Windows): a run's follow wakes the loop for
    each of dozens of WebSocket frames, and asyncio's own bookkeeping of each wake-up (select,
    handles, transports) was about 8 % of the worker's CPU per run with 10-step prompts
    (`bench.paired --mode sampling`: 8.7 % less worker CPU on uvloop; no change at zero work)."""
    if sys.platform != "win32":
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()
