"""The client against a real ComfyUI at COMFYUI_URL (skipped when it is not set).

Uses only model-free nodes (workflows/demo-noise.api.json), so any ComfyUI 0.3.x answers.
Run: COMFYUI_URL=http://127.0.0.1:8188 .venv/bin/pytest tests/live -m live
"""

from __future__ import annotations

import copy
import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError

COMFYUI_URL = os.environ.get("COMFYUI_URL", "")
DEMO_WORKFLOW = Path(__file__).resolve().parents[2] / "workflows" / "demo-noise.api.json"

pytestmark = [
    pytest.mark.live,
    pytest.mark.anyio,
    pytest.mark.skipif(not COMFYUI_URL, reason="set COMFYUI_URL to run against a real ComfyUI"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def demo_graph() -> dict[str, Any]:
    graph: dict[str, Any] = json.loads(DEMO_WORKFLOW.read_text())
    graph["1"]["inputs"].update(width=64, height=64)
    graph["2"]["inputs"]["seed"] = uuid.uuid4().int % 2**32  # never served from the cache
    graph["4"]["inputs"]["filename_prefix"] = f"comfy-sweep-live/{uuid.uuid4().hex[:12]}/demo"
    return graph


async def test_the_demo_graph_runs_and_downloads_with_its_graph(
    demo_graph: dict[str, Any], tmp_path: Path
) -> None:
    prompt_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
    workflow: dict[str, list[Any]] = {"nodes": [], "links": []}
    async with ComfyClient(COMFYUI_URL) as client:
        await client.submit(
            demo_graph,
            prompt_id=prompt_id,
            client_id=client_id,
            extra_pnginfo={"workflow": workflow},
        )
        entry = await client.wait(prompt_id, client_id=client_id, timeout=60.0)
        [output] = entry.outputs
        downloaded = await client.download(output, tmp_path / "demo.png")
        await client.delete_history([prompt_id])
        assert await client.history(prompt_id) is None
    assert (entry.status_str, entry.error) == ("success", None)
    assert downloaded.mime == "image/png"
    with Image.open(tmp_path / "demo.png") as image:
        assert image.size == (64, 64)
        chunks = dict(image.text)  # type: ignore[attr-defined]
    assert json.loads(chunks["prompt"])["4"]["class_type"] == "SaveImage"
    assert json.loads(chunks["workflow"]) == workflow


async def test_a_rejected_prompt_names_node_and_input(demo_graph: dict[str, Any]) -> None:
    demo_graph["3"]["inputs"]["blur_radius"] = 99
    async with ComfyClient(COMFYUI_URL) as client:
        with pytest.raises(ComfyError) as raised:
            await client.submit(demo_graph, prompt_id=str(uuid.uuid4()), client_id="live-test")
    error = raised.value.error
    assert (error.kind, error.node_id, error.class_type, error.input_name) == (
        "validation",
        "3",
        "ImageBlur",
        "blur_radius",
    )


async def test_a_targeted_interrupt_for_an_unknown_prompt_is_harmless() -> None:
    async with ComfyClient(COMFYUI_URL) as client:
        before = await client.queue()
        await client.interrupt(str(uuid.uuid4()))
        stats = await client.system_stats()
    assert "comfyui_version" in stats["system"]
    assert isinstance(before.running, list)


async def test_prompts_one_after_another_share_one_channel(demo_graph: dict[str, Any]) -> None:
    """One socket, under its own client id, hears every prompt submitted under that id: each
    one's own frames (executed, success) reach it, and it is never reconnected."""
    async with ComfyClient(COMFYUI_URL) as client:
        channel = client.channel()
        for _ in range(3):
            graph = copy.deepcopy(demo_graph)
            graph["2"]["inputs"]["seed"] = uuid.uuid4().int % 2**32
            prompt_id = str(uuid.uuid4())
            frames: list[str] = []
            entry = await client.submit_and_wait(
                graph, prompt_id=prompt_id, channel=channel, timeout=60.0, on_frame=frames.append
            )
            await client.delete_history([prompt_id])
            assert (entry.status_str, len(entry.outputs)) == ("success", 1)
            assert any('"executed"' in frame for frame in frames)
            assert all(prompt_id in frame for frame in frames)
        assert channel.connected
        assert not channel.worn
        await channel.close()
