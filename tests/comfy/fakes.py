"""Replaying ComfyUI without ComfyUI: captured answers from a local HTTP server that the
client reaches over a real socket, and a scripted WebSocket for `wait`. The captures are
copies of real ComfyUI 0.3.64 traffic.

Handlers take and give `httpx` requests and responses, a plain way to write an HTTP answer;
the server sends them as they are, streamed bodies in chunks. A handler that raises an
`httpx.TransportError` (or a body that does, midway) drops the connection.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from aiohttp.test_utils import RawTestServer

from app.comfy.channel import Socket
from app.comfy.client import ComfyClient

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "comfyui"

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

    @asynccontextmanager
    async def client(
        self,
        socket: Callable[[], AbstractAsyncContextManager[Socket]] | None = None,
        prefix: str = "",
    ) -> AsyncIterator[ScriptedClient]:
        """A client of this fake, served on a local port for the block's duration; `prefix`:
        a path the base URL ends with (a reverse proxy's)."""
        async with serving_http(self.handle) as base_url:
            client = ScriptedClient(base_url + prefix, socket=socket)
            async with client:
                yield client


@asynccontextmanager
async def serving_http(handle: Handler) -> AsyncIterator[str]:
    """`handle` answering HTTP on a local port; yields the base URL."""

    async def answer(request: web.BaseRequest) -> web.StreamResponse:
        asked = httpx.Request(
            request.method,
            str(request.url),
            headers=list(request.headers.items()),
            content=await request.read(),
        )
        try:
            given = handle(asked)
            headers = {
                name: value
                for name, value in given.headers.items()
                if name.lower() != "transfer-encoding"  # the server frames the body itself
            }
            response = web.StreamResponse(status=given.status_code, headers=headers)
            await response.prepare(request)
            sent = 0
            async for chunk in given.aiter_bytes():
                await response.write(chunk)
                sent += len(chunk)
        except httpx.TransportError:
            _drop(request)
            return web.Response()  # never sent: the connection is gone
        if given.headers.get("Content-Length", str(sent)) != str(sent):
            _drop(request)  # a body shorter than it said: end it there
            return response
        await response.write_eof()
        return response

    server = RawTestServer(answer, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


def _drop(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


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
            raise ConnectionResetError("the WebSocket ended (CLOSED, code 1006)")
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class FloodingSocket(ScriptedSocket):
    """Sends its first frame over and over, as fast as it is read, never yielding to the
    event loop (as a real socket's recv() does while frames are buffered)."""

    async def recv(self, decode: bool | None = None) -> str | bytes:
        self.received += 1
        return self.frames[0]


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
        socket: Callable[[], AbstractAsyncContextManager[Socket]] | None,
    ) -> None:
        super().__init__(base_url)
        self._socket = socket or refusing()
        self.connects = 0
        self.client_ids: list[str] = []  # each connect's, in order

    def open_socket(self, client_id: str) -> AbstractAsyncContextManager[Socket]:
        self.connects += 1
        self.client_ids.append(client_id)
        return self._socket()
