"""A lean HTTP/1.1 GET client for `bench.loadgen`: keep-alive connections, nothing else.

Why not httpx: at 200 req/s httpx's AsyncClient spent about 2.7 ms of CPU per request (its
request and response models, the connection pool's bookkeeping, anyio under it), so the
generator took over half a core of the two the API shares with it and could not keep its
own schedule; on a busy machine the numbers measured the generator as much as the API.
This sends a prebuilt request line and parses the answer with httptools (the C parser
uvicorn uses), on a plain asyncio protocol.

A connection is reused only after a whole response arrived on it; one whose request was
abandoned (the caller's deadline) is closed, never pooled, so a late answer can never be
read as another request's. Loopback only, as the generator is.
"""

from __future__ import annotations

import asyncio
from typing import cast

import httptools


class ProtocolError(Exception):
    """The server's bytes were not an HTTP/1.1 response."""


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.answer: asyncio.Future[int] | None = None
        self.reusable = False
        self.closed = False
        self.answered_any = False  # any byte of an answer arrived on it

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but are ones in all but name
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.answered_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as error:
            self._fail(ProtocolError(str(error)))

    def connection_lost(self, exc: Exception | None) -> None:
        self.reusable = False
        self.closed = True
        self._fail(ConnectionResetError("the server closed the connection"))

    # httptools callbacks
    def on_message_complete(self) -> None:
        self.reusable = self.parser.should_keep_alive()
        if self.answer is not None and not self.answer.done():
            self.answer.set_result(self.parser.get_status_code())

    def send(self, request: bytes) -> asyncio.Future[int]:
        assert self.transport is not None
        self.reusable = False
        self.answer = asyncio.get_running_loop().create_future()
        if self.closed or self.transport.is_closing():
            self.answer.set_exception(ConnectionResetError("the connection was closed"))
        else:
            self.transport.write(request)
        return self.answer

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _fail(self, error: Exception) -> None:
        if self.answer is not None and not self.answer.done():
            self.answer.set_exception(error)


class Client:
    """GETs to one host over pooled keep-alive connections; a request finding none idle
    opens its own (the generator bounds how many are in flight)."""

    def __init__(self, base_url: str, headers: dict[str, str], max_idle: int = 50) -> None:
        host_port = base_url.removeprefix("http://")
        self.host, _, port = host_port.partition(":")
        self.port = int(port)
        self.head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.head += f"Host: {host_port}\r\n\r\n"
        self.max_idle = max_idle
        self.idle: list[_Connection] = []

    async def get(self, path: str) -> int:
        """The response's status code. Raises OSError (could not connect, or the connection
        dropped), ProtocolError, or the caller's cancellation."""
        request = f"GET {path} HTTP/1.1\r\n{self.head}".encode()
        connection = self._idle_connection()
        if connection is not None:
            try:
                return await self._exchange(connection, request)
            except ConnectionResetError:
                # The server closed it while it sat idle (its keep-alive timeout), as the
                # request went out and before any answer: what every pooling client retries
                # once, on a connection of its own.
                if connection.answered_any:
                    raise
        return await self._exchange(await self._connect(), request)

    def _idle_connection(self) -> _Connection | None:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                connection.answered_any = False
                return connection
        return None

    async def _exchange(self, connection: _Connection, request: bytes) -> int:
        try:
            status = await connection.send(request)
        except BaseException:
            connection.close()  # the answer may still come: never reuse this connection
            raise
        if connection.reusable and len(self.idle) < self.max_idle:
            self.idle.append(connection)
        else:
            connection.close()
        return status

    async def _connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, self.host, self.port)
        return connection

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()
