"""Replaying ComfyUI without ComfyUI: captured answers behind `httpx.MockTransport`, and a
scripted WebSocket for `wait`. The captures are copies of real ComfyUI 0.3.64 traffic.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import ConnectionClosedError

from app.comfy.client import ComfyClient
from app.comfy.follow import Socket

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"
BASE_URL = "http://comfy.test:8188"

Handler = Callable[[httpx.Request], httpx.Response]


def capture(name: str) -> Any:
    return json.loads((CAPTURES / f"{name}.json").read_text())


def captured_response(name: str) -> httpx.Response:
    """A capture of the `{"status": ..., "response"|"text": ...}` kind as an HTTP answer."""
    data = capture(name)
    if "response" in data:
        return httpx.Response(data["status"], json=data["response"])
    return httpx.Response(data["status"], text=data.get("text", ""))


class FakeComfy:
    """Routes `(method, path)` to handlers and records every request it saw."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, handler: Handler | httpx.Response) -> None:
        if isinstance(handler, httpx.Response):
            answer = handler
            self.routes[(method, path)] = lambda _request: answer
        else:
            self.routes[(method, path)] = handler

    def answer(self, method: str, path: str, *answers: Any) -> None:
        """Answer with each JSON body in turn, repeating the last one."""
        remaining = list(answers)

        def handler(_request: httpx.Request) -> httpx.Response:
            body = remaining.pop(0) if len(remaining) > 1 else remaining[0]
            return httpx.Response(200, json=body)

        self.routes[(method, path)] = handler

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(404, text=f"no fake route {request.method} {request.url.path}")
        return handler(request)

    def sent(self, method: str, path: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method and r.url.path == path]

    def client(
        self, socket: Callable[[], AbstractAsyncContextManager[Socket]] | None = None
    ) -> ComfyClient:
        return ScriptedClient(BASE_URL, transport=httpx.MockTransport(self.handle), socket=socket)


def body_of(request: httpx.Request) -> Any:
    return json.loads(request.content)


class ScriptedSocket:
    """Yields its frames, then blocks (a quiet socket) or drops the connection."""

    def __init__(self, frames: Iterable[str | bytes], *, drop_at_end: bool = False) -> None:
        self.frames = list(frames)
        self.drop_at_end = drop_at_end
        self.received = 0

    async def recv(self, decode: bool | None = None) -> str | bytes:
        if self.received < len(self.frames):
            self.received += 1
            return self.frames[self.received - 1]
        if self.drop_at_end:
            raise ConnectionClosedError(None, None)
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


def frames_of(capture_name: str) -> list[str]:
    return [json.dumps(message) for message in capture(capture_name)]


def serving(socket: ScriptedSocket) -> Callable[[], AbstractAsyncContextManager[Socket]]:
    @asynccontextmanager
    async def connect() -> AsyncIterator[Socket]:
        yield socket

    return connect


def refusing() -> Callable[[], AbstractAsyncContextManager[Socket]]:
    @asynccontextmanager
    async def connect() -> AsyncIterator[Socket]:
        raise ConnectionRefusedError("no WebSocket here")
        yield  # pragma: no cover

    return connect


class ScriptedClient(ComfyClient):
    """A client whose WebSocket is scripted (or refused when no script is given)."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport,
        socket: Callable[[], AbstractAsyncContextManager[Socket]] | None,
    ) -> None:
        super().__init__(base_url, transport=transport)
        self._socket = socket or refusing()
        self.connects = 0

    def open_socket(self, client_id: str) -> AbstractAsyncContextManager[Socket]:
        self.connects += 1
        return self._socket()
