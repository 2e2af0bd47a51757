"""A prompt that makes no progress is interrupted after the stall time; a slow one that sends
progress, or one waiting behind another, is not. Against the stand-in as a subprocess."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError
from tests.standin.wire import txt2img_graph
from tests.support.standin_process import Standin

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

STALL_S = 1.0
POLL_S = 0.05  # the follower reads the queue every 5 polls while its socket is up


def new_id() -> str:
    return str(uuid.uuid4())


async def test_a_silent_prompt_is_interrupted_and_the_one_behind_it_runs(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    standin.set_faults("hang:+1")  # the next prompt blocks at its first node, saying nothing
    stuck, behind = new_id(), new_id()
    async with ComfyClient(standin.base_url) as client:

        def follow(prompt_id: str) -> asyncio.Task[Any]:
            graph = copy.deepcopy(demo_graph)
            graph["4"]["inputs"]["filename_prefix"] += prompt_id[:8]
            return asyncio.create_task(
                client.submit_and_wait(
                    graph,
                    prompt_id=prompt_id,
                    client_id=prompt_id,
                    timeout=20.0,
                    poll_interval=POLL_S,
                    stall_after=STALL_S,
                )
            )

        loop = asyncio.get_running_loop()
        started = loop.time()
        stuck_wait = follow(stuck)
        await asyncio.sleep(0.3)  # the stuck prompt is running before the other is queued
        behind_wait = follow(behind)
        with pytest.raises(ComfyError) as raised:
            await stuck_wait
        stalled_after = loop.time() - started
        entry = await behind_wait
        stuck_entry = await client.history(stuck)
    error = raised.value.error
    assert (error.kind, error.details) == ("timeout", "stalled")
    assert error.message == (
        f"prompt made no progress for 1 s on 127.0.0.1:{standin.port}; interrupted"
    )
    assert STALL_S <= stalled_after < STALL_S + 3.0
    # Only the stuck prompt was interrupted; the one waiting behind it then ran to the end.
    assert stuck_entry is not None
    assert stuck_entry.error is not None
    assert stuck_entry.error.kind == "interrupted"
    assert (entry.status_str, entry.error) == ("success", None)


async def test_a_slow_sampler_that_reports_progress_is_not_interrupted(
    start_standin: Callable[..., Standin],
) -> None:
    # 8 steps of 400 ms: 3.2 s of sampling, each step a `progress` event, 3 stall times long.
    standin = start_standin("--step-ms", "400")
    prompt_id = new_id()
    graph = txt2img_graph(f"comfy-tests/{prompt_id[:12]}/slow", steps=8)
    async with ComfyClient(standin.base_url) as client:
        started = asyncio.get_running_loop().time()
        entry = await client.submit_and_wait(
            graph,
            prompt_id=prompt_id,
            client_id=prompt_id,
            timeout=20.0,
            poll_interval=POLL_S,
            stall_after=STALL_S,
        )
        took = asyncio.get_running_loop().time() - started
    assert (entry.status_str, entry.error) == ("success", None)
    assert took > 3 * STALL_S


async def test_without_a_stall_time_a_silent_prompt_is_followed_to_the_timeout(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    standin.set_faults("hang:+1")
    prompt_id = new_id()
    async with ComfyClient(standin.base_url) as client:
        with pytest.raises(ComfyError) as raised:
            await client.submit_and_wait(
                demo_graph, prompt_id=prompt_id, client_id=prompt_id, timeout=2.0
            )
        still = await client.queue()
        await client.interrupt(prompt_id)
    assert raised.value.error.kind == "timeout"
    assert raised.value.error.details is None
    assert still.running == [prompt_id]
