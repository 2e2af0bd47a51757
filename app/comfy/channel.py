"""A WebSocket to one instance, kept open and shared by the prompts submitted through it.

ComfyUI sends a prompt's events to the socket registered under the client id the prompt was
submitted with. A worker that submits its prompts one after another under its channel's id
hears all of them on one socket, instead of connecting, waiting for the greeting and closing
again for every run, which was about a fifth of a worker's CPU per run at zero work.

The socket connects, and is greeted (ComfyUI's `status` says it is registered), on first use.
If a prompt's follower fails with it, it is closed; the follower polls and leases it again,
which reconnects under the same id, as the prompt's events go to that id. Such a channel is
*worn*: ComfyUI pops a client id when a socket under it closes, and the old socket's close,
processed late, may pop the new one (`app.comfy.follow`). Its owner replaces it with a fresh
channel, under a new id, before the next prompt, so that one unlucky reconnect costs at most
the events of the prompt that needed it.

Nobody reads the socket between two prompts: ComfyUI's broadcasts (a `status` at every queue
change) wait in the connection's buffers, which a worker's moment between runs never fills.
A channel is closed when its worker stops taking runs, not left open unread.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, suppress
from typing import Protocol

import aiohttp

from app.comfy.protocol import StatusMessage, parse_ws_message

# What a socket's connect, read or close raises when the connection fails: aiohttp's errors
# (a refused upgrade is not an OSError) and the socket's own (`app.comfy.websocket`).
SOCKET_ERRORS = (OSError, TimeoutError, aiohttp.ClientError)
GREETING_TIMEOUT_S = 10.0  # how long a new socket may take to send its first `status`


class Socket(Protocol):
    async def recv(self, decode: bool | None = None) -> str | bytes: ...


SocketOpener = Callable[[str], AbstractAsyncContextManager[Socket]]


async def greeted(socket: Socket) -> None:
    """Wait for the `status` ComfyUI sends a socket once it is registered under its client
    id; events sent before that would go to nobody."""
    async with asyncio.timeout(GREETING_TIMEOUT_S):
        while not isinstance(parse_ws_message(await socket.recv()), StatusMessage):
            pass


class Channel:
    """One socket under one client id of its own; prompts are followed on it one at a time."""

    def __init__(self, open_socket: SocketOpener) -> None:
        self.client_id = str(uuid.uuid4())
        self._open_socket = open_socket
        self._connection: AsyncExitStack | None = None
        self._socket: Socket | None = None
        self.worn = False  # failed once: see the module's docstring

    @property
    def connected(self) -> bool:
        return self._socket is not None

    @asynccontextmanager
    async def lease(self) -> AsyncIterator[Socket]:
        """The socket, connected and greeted; closed, and the channel worn, if the holder
        fails while it has it (a cancelled follow included: the socket's state is unknown)."""
        socket = self._socket or await self._connect()
        try:
            yield socket
        except BaseException:
            self.worn = True
            await self.close()
            raise

    async def _connect(self) -> Socket:
        connection = AsyncExitStack()
        try:
            socket = await connection.enter_async_context(self._open_socket(self.client_id))
            await greeted(socket)
        except BaseException:
            self.worn = True  # a socket may have been registered under the id meanwhile
            with suppress(*SOCKET_ERRORS):
                await connection.aclose()
            raise
        self._connection, self._socket = connection, socket
        return socket

    async def close(self) -> None:
        connection, self._connection, self._socket = self._connection, None, None
        if connection is not None:
            with suppress(*SOCKET_ERRORS):
                await connection.aclose()
