"""Admits at most `capacity` requests at once; the rest wait briefly in line, then get a 503.

Why: sync routes and dependencies run on anyio's worker threads, one hop each, and a request
keeps its database session (and connection) from its auth dependency until its response is
sent. Unbounded, a burst fills every thread with requests waiting for a connection while the
requests holding the connections wait for a thread for their next hop: nothing moves until
the pool times out. Admitted requests never outnumber the pool's connections or the threads,
so none of them waits for either, and the excess is refused while it is still cheap: before
it holds a thread, a connection or a body. A request whose client hung up while it waited is
dropped when admitted, unserved. `/healthz` is never queued.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable

import anyio
import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

RETRY_AFTER_S = 1


class Admission:
    def __init__(
        self,
        app: ASGIApp,
        capacity: int,
        wait_s: float,
        exempt: frozenset[str],
        exempt_suffixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.capacity = capacity
        self.wait_s = wait_s
        self.exempt = exempt
        self.exempt_suffixes = exempt_suffixes
        self._line: tuple[asyncio.AbstractEventLoop, anyio.Semaphore] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if not path or path in self.exempt or path.endswith(self.exempt_suffixes):
            await self.app(scope, receive, send)
            return
        line = self._current_line()
        try:
            line.acquire_nowait()  # a free place costs no timer (and no waiter jumps the line)
        except anyio.WouldBlock:
            try:
                with anyio.fail_after(self.wait_s):
                    await line.acquire()
            except TimeoutError:
                log.warning("request_shed path=%s waited_s=%s", scope["path"], self.wait_s)
                await _refuse(send)
                return
        try:
            gone, receive = await _client_gone(receive)
            if gone:
                # Waited in line (or in the kernel, or the loop) past the client's patience:
                # no one reads the answer, and after a burst such requests would keep the
                # API busy for the ones that are still waiting.
                log.info("request_dropped path=%s client gone before it ran", scope["path"])
                return
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


async def _client_gone(receive: Receive) -> tuple[bool, Receive]:
    """Whether the client has already disconnected, without waiting: takes the next message
    only if it is there at once, and hands it back through the returned `receive` (a body
    taken here is still the app's)."""
    message = _at_once(receive())
    if message is None:
        return False, receive
    if message["type"] == "http.disconnect":
        return True, receive
    taken: Message | None = message

    async def replay() -> Message:
        nonlocal taken
        if taken is not None:
            first, taken = taken, None
            return first
        return await receive()

    return False, replay


def _at_once(pending: Awaitable[Message]) -> Message | None:
    """`pending`'s result if it has one without suspending, else None, `pending` abandoned
    as a cancellation would leave it. Stepped by hand: a cancel scope set to expire at once
    did the same at about a twentieth of a status read's CPU (a timer, and the task's repr
    formatted into the cancel message)."""
    steps = pending.__await__()
    try:
        steps.send(None)
    except StopIteration as done:
        result: Message = done.value
        return result
    steps.close()  # it would have waited: unwinds it (its waiter is removed)
    return None


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
