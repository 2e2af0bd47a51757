"""The API as `python -m app.serve` serves it: uvicorn's overload guards come from Settings,
in the image's process and in `make run`'s alike."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest

from app.launcher import server_config
from app.serve import parse_args, uvicorn_kwargs
from app.settings import Settings
from tests.support.serving import serve_process


def test_the_served_command_carries_the_settings_guards() -> None:
    settings = Settings(api_limit_concurrency=100, api_backlog=64, api_workers=2)
    options = uvicorn_kwargs(settings, parse_args(["--host", "127.0.0.2", "--port", "8123"]))
    assert options["limit_concurrency"] == 100
    assert options["backlog"] == 64
    assert options["workers"] == 2
    assert (options["host"], options["port"], options["factory"]) == ("127.0.0.2", 8123, True)


def test_make_run_serves_with_the_same_guards(settings: Settings) -> None:
    guarded = settings.model_copy(update={"api_limit_concurrency": 100, "api_backlog": 64})
    config = server_config(guarded, "127.0.0.1", 8123)
    assert (config.limit_concurrency, config.backlog) == (100, 64)


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    """`python -m app.serve` in a process of its own: 1 request admitted, uvicorn's limit 3."""
    with serve_process(settings, {"API_CONCURRENCY": "1", "API_LIMIT_CONCURRENCY": "3"}) as base:
        yield base


def idle_connections(stack: ExitStack, port: int, count: int) -> None:
    for _ in range(count):
        stack.enter_context(socket.create_connection(("127.0.0.1", port)))


def test_past_its_limit_the_process_answers_503_before_the_app(served: str) -> None:
    port = int(served.rsplit(":", 1)[1])
    with ExitStack() as stack:
        idle_connections(stack, port, 1)
        assert httpx.get(f"{served}/healthz").status_code == 200  # 2 connections of 3
        idle_connections(stack, port, 2)
        time.sleep(0.2)  # accepted by the server
        refused = httpx.get(f"{served}/healthz")
        # uvicorn's own answer: even /healthz, which the app never refuses.
        assert refused.status_code == 503
        assert refused.headers["content-type"].startswith("text/plain")
    time.sleep(0.2)
    assert httpx.get(f"{served}/healthz").status_code == 200
