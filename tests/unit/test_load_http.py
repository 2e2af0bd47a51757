"""bench.load_http, the load generator's client: statuses as sent, connections reused, and
a connection the server closed while idle never costs a request."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import uvicorn

from bench.load_http import Client

Message = dict[str, Any]


async def answer(scope: Message, receive: Callable[[], Awaitable[Message]], send: Any) -> None:
    if scope["type"] != "http":
        return
    status = 404 if scope["path"] == "/missing" else 200
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}" * 1000})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def with_server(keep_alive_s: int, body: Callable[[Client], Awaitable[None]]) -> None:
    port = free_port()
    config = uvicorn.Config(
        answer, port=port, log_level="warning", lifespan="off", timeout_keep_alive=keep_alive_s
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    client = Client(f"http://127.0.0.1:{port}", {"Authorization": "Bearer x"}, max_idle=5)
    try:
        await body(client)
    finally:
        client.close()
        server.should_exit = True
        await serving


def test_statuses_come_back_and_connections_are_reused() -> None:
    async def body(client: Client) -> None:
        statuses = await asyncio.gather(*(client.get(f"/x/{i}") for i in range(50)))
        assert statuses == [200] * 50
        assert len(client.idle) == 5  # the rest were closed, not kept
        kept = list(client.idle)
        assert await client.get("/missing") == 404
        assert client.idle[-1] in kept

    asyncio.run(with_server(5, body))


def test_a_connection_the_server_closed_while_idle_is_not_an_error() -> None:
    async def body(client: Client) -> None:
        assert await client.get("/x") == 200
        await asyncio.sleep(1.3)  # past the server's keep-alive: it closes the connection
        assert await client.get("/x") == 200

    asyncio.run(with_server(1, body))
