"""A worker process's ComfyUI session: one event loop and one keep-alive client per instance."""

from __future__ import annotations

import asyncio

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
