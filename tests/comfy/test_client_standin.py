"""The client against the ComfyUI stand-in running as a real subprocess (HTTP and WebSocket)."""

from __future__ import annotations

import asyncio
import copy
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from app.comfy.channel import Socket
from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError
from app.comfy.protocol import ExecutingMessage, OutputFile, WsMessage
from app.comfy.websocket import AiohttpSocket
from tests.support.standin_process import Standin

pytestmark = pytest.mark.anyio

WORKFLOW = {"nodes": [], "links": [], "version": 0.4}  # what a UI would put in extra_pnginfo


class NoSocketClient(ComfyClient):
    """A client whose WebSocket never connects: `wait` must live on `/history` alone."""

    def open_socket(self, client_id: str) -> AbstractAsyncContextManager[Socket]:
        @asynccontextmanager
        async def refused() -> AsyncIterator[Socket]:
            raise ConnectionRefusedError("WebSocket blocked")
            yield  # pragma: no cover

        return refused()


def new_id() -> str:
    return str(uuid.uuid4())


async def until(predicate: Callable[[], Any], seconds: float = 10.0) -> None:
    """Poll an async predicate until it holds."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def running(client: ComfyClient, prompt_id: str) -> None:
    async def check() -> bool:
        return (await client.queue()).running == [prompt_id]

    await until(check)


async def test_the_demo_graph_runs_and_its_png_keeps_the_graph(
    standin: Standin, demo_graph: dict[str, Any], tmp_path: Path
) -> None:
    # A hanging prompt ahead of ours keeps it pending until the socket is surely connected,
    # so every event of ours is heard (events sent before a connect are dropped).
    standin.set_faults("hang:+1")
    blocker, prompt_id, client_id = new_id(), new_id(), new_id()
    seen: list[WsMessage] = []
    async with ComfyClient(standin.base_url) as client:
        await client.submit(copy.deepcopy(demo_graph), prompt_id=blocker, client_id=new_id())
        accepted = await client.submit(
            demo_graph,
            prompt_id=prompt_id,
            client_id=client_id,
            extra_pnginfo={"workflow": WORKFLOW},
        )
        waiting = asyncio.create_task(
            client.wait(prompt_id, client_id=client_id, on_event=seen.append, timeout=10.0)
        )
        await asyncio.sleep(0.3)
        await client.interrupt(blocker)
        entry = await waiting
        [output] = entry.outputs
        downloaded = await client.download(output, tmp_path / "demo.png")
    assert accepted.prompt_id == prompt_id
    assert (entry.status_str, entry.completed, entry.error) == ("success", True, None)
    prefix = demo_graph["4"]["inputs"]["filename_prefix"]
    assert (output.node_id, output.type, output.animated) == ("4", "output", False)
    assert f"{output.subfolder}/{output.filename}".startswith(prefix)
    # Events came over the WebSocket, ending with the finish signal.
    assert {m.type for m in seen} >= {"execution_start", "executing", "execution_success"}
    assert isinstance(seen[-1], ExecutingMessage)
    assert seen[-1].data.node is None
    assert downloaded.mime == "image/png"
    assert downloaded.size == (tmp_path / "demo.png").stat().st_size
    with Image.open(tmp_path / "demo.png") as image:
        assert image.size == (512, 512)
        chunks = dict(image.text)  # type: ignore[attr-defined]
    assert json.loads(chunks["prompt"])["4"]["class_type"] == "SaveImage"
    assert json.loads(chunks["workflow"]) == WORKFLOW


async def test_the_socket_is_opened_without_compression(standin: Standin) -> None:
    # The stand-in accepts permessage-deflate, as ComfyUI does: only our offer decides.
    async with ComfyClient(standin.base_url) as client, client.open_socket(new_id()) as socket:
        assert isinstance(socket, AiohttpSocket)
        assert not socket.compressed


async def test_wait_polls_the_history_when_the_socket_cannot_connect(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    prompt_id, client_id = new_id(), new_id()
    async with NoSocketClient(standin.base_url) as client:
        await client.submit(demo_graph, prompt_id=prompt_id, client_id=client_id)
        entry = await client.wait(prompt_id, client_id=client_id, poll_interval=0.05)
    assert entry.status_str == "success"
    assert len(entry.outputs) == 1


async def test_a_wait_started_after_the_prompt_finished_returns_its_entry(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    prompt_id, client_id = new_id(), new_id()
    async with ComfyClient(standin.base_url) as client:
        await client.submit(demo_graph, prompt_id=prompt_id, client_id=client_id)

        async def finished() -> bool:
            return await client.history(prompt_id) is not None

        await until(finished)
        entry = await asyncio.wait_for(
            client.wait(prompt_id, client_id=client_id, poll_interval=60.0), 5.0
        )
    assert entry.status_str == "success"


async def test_interrupting_our_prompt_ends_it_as_interrupted(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    standin.set_faults("hang:+1")  # the next prompt hangs until interrupted
    prompt_id, client_id = new_id(), new_id()
    async with ComfyClient(standin.base_url) as client:
        await client.submit(demo_graph, prompt_id=prompt_id, client_id=client_id)
        await running(client, prompt_id)
        await client.interrupt(prompt_id)
        entry = await client.wait(prompt_id, client_id=client_id, timeout=10.0)
    assert entry.status_str == "error"
    assert entry.outputs == []
    assert entry.error is not None
    assert entry.error.kind == "interrupted"
    assert entry.error.node_id is not None


async def test_an_interrupt_for_another_prompt_leaves_ours_running(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    standin.set_faults("hang:+1")
    prompt_id, client_id = new_id(), new_id()
    async with ComfyClient(standin.base_url) as client:
        await client.submit(demo_graph, prompt_id=prompt_id, client_id=client_id)
        await running(client, prompt_id)
        await client.interrupt(new_id())
        await asyncio.sleep(0.3)
        still = await client.queue()
        await client.interrupt(prompt_id)
        await client.wait(prompt_id, client_id=client_id, timeout=10.0)
    assert still.running == [prompt_id]


async def test_a_pending_prompt_removed_from_the_queue_is_reported_lost(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    standin.set_faults("hang:+1")
    first, second, client_id = new_id(), new_id(), new_id()
    async with ComfyClient(standin.base_url) as client:
        await client.submit(demo_graph, prompt_id=first, client_id=client_id)
        await running(client, first)
        await client.submit(copy.deepcopy(demo_graph), prompt_id=second, client_id=client_id)
        before = await client.queue()
        await client.remove_from_queue([second])
        after = await client.queue()
        with pytest.raises(ComfyError) as raised:
            await client.wait(second, client_id=client_id, poll_interval=0.05, timeout=10.0)
        await client.interrupt(first)
        await client.wait(first, client_id=client_id, timeout=10.0)
    assert (before.running, before.pending) == ([first], [second])
    assert (after.running, after.pending) == ([first], [])
    assert raised.value.error.kind == "transport"
    assert raised.value.error.details == "prompt_lost"


async def test_front_prompts_are_listed_first(standin: Standin, demo_graph: dict[str, Any]) -> None:
    standin.set_faults("hang:+1")
    blocker, late, client_id = new_id(), new_id(), new_id()
    async with ComfyClient(standin.base_url) as client:
        await client.submit(demo_graph, prompt_id=blocker, client_id=client_id)
        await running(client, blocker)
        await client.submit(copy.deepcopy(demo_graph), prompt_id=late, client_id=client_id)
        front = new_id()
        # The client never sends "front"; post it raw, as another ComfyUI user might.
        raw = {"prompt": demo_graph, "client_id": client_id, "prompt_id": front, "front": True}
        httpx.post(f"{standin.base_url}/prompt", json=raw, timeout=5.0).raise_for_status()
        state = await client.queue()
        await client.remove_from_queue([late, front])
        await client.interrupt(blocker)
        await client.wait(blocker, client_id=client_id, timeout=10.0)
    assert state.pending == [front, late]


async def test_a_rejected_prompt_names_node_class_and_input(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    demo_graph["3"]["inputs"]["blur_radius"] = 99
    async with ComfyClient(standin.base_url) as client:
        with pytest.raises(ComfyError) as raised:
            await client.submit(demo_graph, prompt_id=new_id(), client_id=new_id())
    error = raised.value.error
    assert (error.kind, error.node_id, error.class_type, error.input_name) == (
        "validation",
        "3",
        "ImageBlur",
        "blur_radius",
    )
    assert "99" in error.message


async def test_a_prompt_with_one_failing_output_is_rejected_and_not_left_queued(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    # One output validates, one does not: ComfyUI answers 200 with node_errors.
    bad_blur = {"image": ["2", 0], "blur_radius": 99, "sigma": 1.0}
    demo_graph["5"] = {"class_type": "ImageBlur", "inputs": bad_blur}
    save = {"images": ["5", 0], "filename_prefix": "comfy-tests/never"}
    demo_graph["6"] = {"class_type": "SaveImage", "inputs": save}
    prompt_id = new_id()
    async with ComfyClient(standin.base_url) as client:
        with pytest.raises(ComfyError) as raised:
            await client.submit(demo_graph, prompt_id=prompt_id, client_id=new_id())

        async def gone() -> bool:  # out of the queue, or interrupted if it had started
            return not (await client.queue()).holds(prompt_id)

        await until(gone)
    error = raised.value.error
    assert (error.kind, error.node_id, error.input_name) == ("validation", "5", "blur_radius")


async def test_history_can_be_deleted_once_copied(
    standin: Standin, demo_graph: dict[str, Any]
) -> None:
    prompt_id, client_id = new_id(), new_id()
    async with ComfyClient(standin.base_url) as client:
        await client.submit(demo_graph, prompt_id=prompt_id, client_id=client_id)
        await client.wait(prompt_id, client_id=client_id)
        await client.delete_history([prompt_id])
        assert await client.history(prompt_id) is None


async def test_missing_files_and_unsafe_names_are_errors(standin: Standin, tmp_path: Path) -> None:
    async with ComfyClient(standin.base_url) as client:
        with pytest.raises(ComfyError) as missing:
            await client.download(OutputFile(node_id="4", filename="nope.png"), tmp_path / "a")
        unsafe_file = OutputFile(node_id="4", filename="x.png", subfolder="../..")
        with pytest.raises(ComfyError) as unsafe:
            await client.download(unsafe_file, tmp_path / "b")
    assert missing.value.error.kind == "transport"
    assert unsafe.value.error.kind == "protocol"
    assert list(tmp_path.iterdir()) == []


async def test_instance_endpoints_answer(standin: Standin) -> None:
    async with ComfyClient(standin.base_url) as client:
        stats = await client.system_stats()
        info = await client.object_info()
        await client.free()
    assert "comfyui_version" in stats["system"]
    assert {"EmptyImage", "ImageAddNoise", "ImageBlur", "SaveImage"} <= info.keys()


async def test_a_restart_that_loses_the_prompt_fails_the_wait_as_transport(
    start_standin: Callable[..., Standin], demo_graph: dict[str, Any]
) -> None:
    first = start_standin("--faults", "hang:1")
    prompt_id, client_id = new_id(), new_id()
    async with ComfyClient(first.base_url, timeout=2.0) as client:
        await client.submit(demo_graph, prompt_id=prompt_id, client_id=client_id)
        await running(client, prompt_id)
        waiting = asyncio.create_task(
            client.wait(prompt_id, client_id=client_id, poll_interval=0.05, timeout=30.0)
        )
        await asyncio.sleep(0.2)  # the wait is on the socket now
        first.stop()
        await asyncio.to_thread(start_standin, port=first.port)
        with pytest.raises(ComfyError) as raised:
            await waiting
    assert raised.value.error.kind == "transport"
    assert raised.value.error.details == "prompt_lost"
