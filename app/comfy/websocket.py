"""The WebSocket to a ComfyUI instance, on the client's own aiohttp session.

aiohttp parses frames in C: a frame costs a worker about half the CPU it did with the
`websockets` library (20 against 39 µs, measured on the stand-in), and a worker reads dozens
per prompt, its own prompts' events and every `status` its instance broadcasts to all
sockets. Pings and pongs are answered inside aiohttp; what reaches the caller is text or
binary frames, and a closed or failed connection raises `ConnectionResetError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from yarl import URL

from app.comfy.channel import Socket

# `executed`/`execution_error` can carry large node outputs.
WS_MAX_MESSAGE_BYTES = 64 << 20
# A socket's closing handshake, which holds up the task closing it: a live server answers in
# milliseconds, and one that does not within this is gone or stuck.
WS_CLOSE_TIMEOUT_S = 2.0
# Pings, so that a connection that died silently (a host gone, a proxy that dropped it) is
# noticed and the follower falls back to polling, rather than wait for events that never
# come and judge the prompt stalled.
WS_HEARTBEAT_S = 20.0

_FRAMES = (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY)


class AiohttpSocket:
    """A `Socket` over aiohttp's client WebSocket."""

    def __init__(self, connection: aiohttp.ClientWebSocketResponse) -> None:
        self._connection = connection

    @property
    def compressed(self) -> bool:
        """Whether the server agreed to permessage-deflate (never offered here)."""
        return self._connection.compress != 0

    async def recv(self, decode: bool | None = None) -> str | bytes:
        message = await self._connection.receive()
        if message.type in _FRAMES:
            data: str | bytes = message.data
            return data
        code = self._connection.close_code
        raise ConnectionResetError(f"the WebSocket ended ({message.type.name}, code {code})")


@asynccontextmanager
async def open_websocket(
    session: aiohttp.ClientSession, url: URL, proxy: str | None
) -> AsyncIterator[Socket]:
    """`url` (ws:// or wss://) connected on `session`, closed when the block ends.

    No permessage-deflate (aiohttp offers none unless asked): its zlib contexts cost CPU on
    every frame to save bytes on frames of a few hundred. aiohttp's reader stops reading past
    64 KiB unread, but its close reads on through to the server's close frame, so a socket
    nobody read for a while (a channel between two prompts) still closes at once."""
    timeout = aiohttp.ClientWSTimeout(ws_receive=None, ws_close=WS_CLOSE_TIMEOUT_S)
    connecting = session.ws_connect(
        url,
        proxy=proxy,
        timeout=timeout,
        max_msg_size=WS_MAX_MESSAGE_BYTES,
        heartbeat=WS_HEARTBEAT_S,
    )
    async with connecting as connection:
        yield AiohttpSocket(connection)
