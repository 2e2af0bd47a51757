"""Stopping a prompt on a real ComfyUI at COMFYUI_URL (skipped when it is not set).

The prompts blur a large image: on a CPU, ImageBlur then runs for seconds as one node, during
which ComfyUI sends nothing and checks for an interrupt nowhere (only between nodes). On a fast
GPU the blur may end before we act; those tests then skip rather than pass on nothing.
Run: COMFYUI_URL=http://127.0.0.1:8188 .venv/bin/pytest tests/live -m live
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError
from app.comfy.protocol import HistoryEntry

COMFYUI_URL = os.environ.get("COMFYUI_URL", "")
DEMO_WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "demo-noise.api.json"

pytestmark = [
    pytest.mark.live,
    pytest.mark.anyio,
    pytest.mark.timeout(120),
    pytest.mark.skipif(not COMFYUI_URL, reason="set COMFYUI_URL to run against a real ComfyUI"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def slow_graph(size: int) -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(DEMO_WORKFLOW.read_text())
    graph["1"]["inputs"].update(width=size, height=size)
    graph["2"]["inputs"]["seed"] = uuid.uuid4().int % 2**32  # never served from the cache
    graph["3"]["inputs"].update(blur_radius=31, sigma=10.0)
    graph["4"]["inputs"]["filename_prefix"] = f"comfy-sweep-live/{uuid.uuid4().hex[:12]}/slow"
    return graph


async def until_running(client: ComfyClient, prompt_id: str, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while prompt_id not in (await client.queue()).running:
            await asyncio.sleep(0.02)


async def until_finished(
    client: ComfyClient, prompt_id: str, timeout: float = 90.0
) -> HistoryEntry:
    async with asyncio.timeout(timeout):
        while (entry := await client.history(prompt_id)) is None:
            await asyncio.sleep(0.2)
    return entry


async def test_a_targeted_interrupt_stops_the_running_prompt_with_no_output() -> None:
    prompt_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with ComfyClient(COMFYUI_URL) as client:
        await client.submit(slow_graph(1024), prompt_id=prompt_id, client_id=client_id)
        await until_running(client, prompt_id)
        await client.interrupt(prompt_id)
        entry = await client.wait(prompt_id, client_id=client_id, timeout=60.0)
        await client.delete_history([prompt_id])

    if entry.status_str == "success":
        pytest.skip("the prompt finished before the interrupt landed")
    assert (entry.status_str, entry.completed, entry.outputs) == ("error", False, [])
    assert entry.error is not None
    assert entry.error.kind == "interrupted"
    assert entry.error.node_id in {"2", "3", "4"}  # stopped before a later node started
    assert entry.error.message == f"interrupted at node {entry.error.node_id}"


async def test_a_silent_prompt_is_withdrawn_and_ends_interrupted_before_saving() -> None:
    """The stall watch gives up on the blur's silence, withdraws the prompt (interrupt with
    its id) and fails as a stalled timeout. ComfyUI finishes the node it is in (it cannot stop
    a blur midway; seen here: it stops before SaveImage), so no file is written."""
    prompt_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    async with ComfyClient(COMFYUI_URL) as client:
        try:
            finished = await client.submit_and_wait(
                slow_graph(1536),
                prompt_id=prompt_id,
                client_id=client_id,
                timeout=60.0,
                poll_interval=0.1,  # the stall is judged every 5 polls
                stall_after=0.5,
            )
        except ComfyError as raised:
            error = raised.error
        else:
            await client.delete_history([prompt_id])
            pytest.skip(f"no node ran long enough to stall: {finished.status_str}")
        entry = await until_finished(client, prompt_id)
        still_queued = (await client.queue()).holds(prompt_id)
        await client.delete_history([prompt_id])

    assert (error.kind, error.details) == ("timeout", "stalled")
    assert "no progress for 0.5 s" in error.message
    assert not still_queued
    assert (entry.status_str, entry.outputs) == ("error", [])
    assert entry.error is not None
    assert entry.error.kind == "interrupted"
    assert entry.error.node_id in {"2", "3", "4"}
