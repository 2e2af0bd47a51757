"""Admits at most `capacity` requests at once; the rest wait briefly in line, then get a 503.

Why: sync routes and dependencies run on anyio's worker threads, one hop each, and a request
keeps its database session (and connection) from its auth dependency until its response is
sent. Unbounded, a burst fills every thread with requests waiting for a connection while the
requests holding the connections wait for a thread for their next hop: nothing moves until
the pool times out. Admitted requests never outnumber the pool's connections or the threads,
so none of them waits for either, and the excess is refused while it is still cheap: before
it holds a thread, a connection or a body. `/healthz` is never queued.
"""

from __future__ import annotations

import asyncio
import json
import logging

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


class Admission:
    def __init__(self, app: ASGIApp, capacity: int, wait_s: float, exempt: frozenset[str]) -> None:
        self.app = app
        self.capacity = capacity
        self.wait_s = wait_s
        self.exempt = exempt
        self._line: tuple[asyncio.AbstractEventLoop, anyio.Semaphore] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        line = self._current_line()
        try:
            with anyio.fail_after(self.wait_s):
                await line.acquire()
        except TimeoutError:
            log.warning("request_shed path=%s waited_s=%s", scope["path"], self.wait_s)
            await _refuse(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            line.release()

    def _current_line(self) -> anyio.Semaphore:
        # Made on first use, inside the loop that serves (a test client runs its own loop).
        loop = asyncio.get_running_loop()
        if self._line is None or self._line[0] is not loop:
            self._line = (loop, anyio.Semaphore(self.capacity))
            threads = anyio.to_thread.current_default_thread_limiter()
            # Each admitted request uses one thread at a time; headroom for file reads.
            threads.total_tokens = max(threads.total_tokens, self.capacity + 8)
        return self._line[1]


async def _refuse(send: Send) -> None:
    body = json.dumps({"detail": "the API is at capacity; retry shortly"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"retry-after", str(RETRY_AFTER_S).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
