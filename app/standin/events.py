"""WebSocket fan-out: sockets by clientId, and a thread-safe `send` that keeps event order.

Any thread may call `send`; messages go through one asyncio queue drained by one task, so a
client sees events in the order they were produced. `sid=None` means every socket (ComfyUI's
`send_sync(..., sid=None)`), which is also where per-prompt events go when the executing
prompt has no client_id and the event is one ComfyUI sends regardless (progress,
execution_interrupted). Events to a socket that is not connected are dropped, not buffered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading

from starlette.websockets import WebSocket

from app.standin.graph import JsonObject

log = logging.getLogger(__name__)

Message = tuple[str, JsonObject, str | None]


class EventHub:
    def __init__(self) -> None:
        self._sockets: dict[str, WebSocket] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue[Message] | None = None
        # Which client the running prompt belongs to and the node it is on, for reconnects.
        self.client_id: str | None = None
        self.last_node_id: str | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue = asyncio.Queue()

    def send(self, event: str, data: JsonObject, sid: str | None = None) -> None:
        loop, queue = self._loop, self._queue
        if loop is None or queue is None:
            return
        # A loop closed during shutdown raises RuntimeError: nobody is listening any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(queue.put_nowait, (event, data, sid))

    def attach(self, sid: str, socket: WebSocket) -> None:
        with self._lock:
            self._sockets[sid] = socket

    def detach(self, sid: str) -> None:
        # Like ComfyUI, by sid only: an old socket closing after a reconnect with the same
        # clientId unregisters the new one too, and that client then hears nothing.
        with self._lock:
            self._sockets.pop(sid, None)

    def socket_count(self) -> int:
        with self._lock:
            return len(self._sockets)

    async def publish_forever(self) -> None:
        if self._queue is None:
            raise RuntimeError("EventHub.bind must run before publishing")
        while True:
            event, data, sid = await self._queue.get()
            await self._deliver(event, data, sid)

    async def _deliver(self, event: str, data: JsonObject, sid: str | None) -> None:
        with self._lock:
            if sid is None:
                targets = list(self._sockets.values())
            else:
                socket = self._sockets.get(sid)
                targets = [] if socket is None else [socket]
        text = json.dumps({"type": event, "data": data})
        for socket in targets:
            try:
                await socket.send_text(text)
            except Exception as ex:  # a closing socket must not stop the others
                log.debug("ws send failed event=%s error=%r", event, ex)
