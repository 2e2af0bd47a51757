"""A worker process's ComfyUI session: one event loop and one keep-alive client per instance."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.support.standin_process import Standin
from workers.comfy_session import ComfySession

URL = "http://gpu1:8188"


async def _running_loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()


def test_runs_share_one_loop_and_one_client_per_instance() -> None:
    session = ComfySession()
    made_before_any_run = session.client(URL)  # as a worker's warm-up does

    first_loop = session.run(_running_loop())
    second_loop = session.run(_running_loop())

    assert first_loop is second_loop
    assert session.client(URL) is made_before_any_run
    assert session.client("http://gpu2:8188") is not made_before_any_run
    assert set(session.clients) == {URL, "http://gpu2:8188"}
    session.close()
    assert first_loop.is_closed()
    assert not session.clients


def test_a_closed_loop_is_replaced_and_its_clients_with_it() -> None:
    session = ComfySession()
    session.client(URL)
    session.run(_running_loop()).close()
    stale = session.client(URL)

    loop = session.run(_running_loop())

    assert not loop.is_closed()
    assert session.client(URL) is not stale
    session.close()


# --- finished prompts' history entries, deleted in batches on the real stand-in -----------


def run_prompts(
    session: ComfySession, base_url: str, graph: dict[str, Any], count: int
) -> list[str]:
    client = session.client(base_url)
    prompt_ids = []
    for _ in range(count):
        prompt_id = str(uuid.uuid4())
        session.run(client.submit_and_wait(graph, prompt_id=prompt_id, client_id=prompt_id))
        prompt_ids.append(prompt_id)
    return prompt_ids


def in_history(base_url: str, prompt_ids: list[str]) -> list[bool]:
    return [bool(httpx.get(f"{base_url}/history/{p}", timeout=5).json()) for p in prompt_ids]


def test_finished_prompts_are_forgotten_a_batch_at_a_time(
    standin: Standin, demo_graph: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.comfy_session.FORGET_BATCH", 3)
    session = ComfySession()
    prompt_ids = run_prompts(session, standin.base_url, demo_graph, 4)

    for prompt_id in prompt_ids[:2]:
        session.run(session.forget(standin.base_url, prompt_id))
    assert in_history(standin.base_url, prompt_ids) == [True] * 4  # the batch is not full

    session.run(session.forget(standin.base_url, prompt_ids[2]))
    assert in_history(standin.base_url, prompt_ids) == [False, False, False, True]
    session.close()


def test_closing_the_session_forgets_a_partial_batch(
    standin: Standin, demo_graph: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.comfy_session.FORGET_BATCH", 3)
    session = ComfySession()
    prompt_ids = run_prompts(session, standin.base_url, demo_graph, 2)
    for prompt_id in prompt_ids:
        session.run(session.forget(standin.base_url, prompt_id))
    assert in_history(standin.base_url, prompt_ids) == [True, True]

    session.close()

    assert in_history(standin.base_url, prompt_ids) == [False, False]


def test_an_instance_that_refuses_the_delete_only_costs_a_warning(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("workers.comfy_session.FORGET_BATCH", 1)
    session = ComfySession()
    unreachable = "http://127.0.0.1:9"  # the discard port: nothing listens

    session.run(session.forget(unreachable, str(uuid.uuid4())))

    assert "history_delete_failed prompts=1" in caplog.text
    session.close()


# --- the channels: one socket per instance while the process keeps taking runs ---------


def test_hanging_up_a_socket_left_unread_between_prompts_is_quick(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    session = ComfySession()
    client = session.client(standin.base_url)

    async def on_the_channel() -> None:
        channel = await session.channel(standin.base_url)
        prompt_id = str(uuid.uuid4())
        await client.submit_and_wait(demo_graph, prompt_id=prompt_id, channel=channel)

    session.run(on_the_channel())
    # Between two runs the loop is stopped, and other clients' prompts make the instance
    # broadcast `status` to every socket, which pile up unread, the server's close frame
    # behind them (the websockets library stopped reading at 16 and waited for it in vain).
    for _ in range(20):
        prompt_id = str(uuid.uuid4())
        body = {"prompt": demo_graph, "prompt_id": prompt_id, "client_id": "someone-else"}
        httpx.post(f"{standin.base_url}/prompt", json=body, timeout=5).raise_for_status()
    deadline = time.monotonic() + 10
    while httpx.get(f"{standin.base_url}/queue", timeout=5).json()["queue_pending"]:
        assert time.monotonic() < deadline
        time.sleep(0.05)

    started = time.monotonic()
    session.hang_up()
    assert time.monotonic() - started < 1.0  # the close handshake, not its timeout
    stats = httpx.get(f"{standin.base_url}/system_stats", timeout=5).json()["standin"]
    assert stats["sockets_open"] == 0
    session.close()
