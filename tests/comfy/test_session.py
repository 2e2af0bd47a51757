"""A worker process's ComfyUI session: one event loop and one keep-alive client per instance."""

from __future__ import annotations

import asyncio
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
