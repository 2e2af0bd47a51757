"""The baseline: a plain ComfyUI script that feeds prompts to instances back to back.

It does what a user's own script does over ComfyUI's API (POST /prompt with a client_id,
follow `/ws?clientId=` until `executing` with node null, read /history, fetch each image from
/view), keeping up to `slots` prompts queued per instance as comfy-sweep's pool does. It must
import nothing from `app` or `workers`: it is the yardstick comfy-sweep is measured against,
so a flaw in our client cannot hide in both.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

WORKFLOWS_DIR = Path(__file__).resolve().parent.parent / "workflows"

# The node inputs each parameter the benchmarks vary sets, read off the API graphs by hand
# rather than from the service's contracts, so a wrong binding there shows as a mismatch.
BINDINGS: dict[str, dict[str, list[tuple[str, str]]]] = {
    "sd15-txt2img": {
        "seed": [("6", "seed")],
        "steps": [("6", "steps")],
        "width": [("5", "width")],
        "height": [("5", "height")],
        "checkpoint": [("1", "ckpt_name")],
    },
    "demo-noise": {"seed": [("2", "seed")], "width": [("1", "width")], "height": [("1", "height")]},
}

Graph = dict[str, Any]


def build_prompt(workflow: str, values: Mapping[str, object], prefix: str) -> Graph:
    """The workflow's API graph with `values` set and every saver writing under `prefix`."""
    graph: Graph = json.loads((WORKFLOWS_DIR / f"{workflow}.api.json").read_text())
    for name, value in values.items():
        for node, field in BINDINGS[workflow][name]:
            graph[node]["inputs"][field] = value
    for node in graph.values():
        if "filename_prefix" in node["inputs"]:
            node["inputs"]["filename_prefix"] = prefix
    return graph


@dataclass(frozen=True)
class DriveResult:
    makespan_s: float  # first submission to the last image downloaded
    prompts_per_instance: list[int]
    images: int


def drive(urls: Sequence[str], prompts: Sequence[Graph], slots: int) -> DriveResult:
    """Run every prompt once, each on whichever instance has a free slot first."""
    shared = deque(prompts)
    return asyncio.run(_drive(urls, [shared] * len(urls), slots))


def deal(urls: Sequence[str], prompts: Sequence[Graph], slots: int) -> DriveResult:
    """Run every prompt once, dealt round-robin in order: prompt i to instance i mod n, as a
    script that knows nothing of models splits its work."""
    dealt = [deque(prompts[first :: len(urls)]) for first in range(len(urls))]
    return asyncio.run(_drive(urls, dealt, slots))


async def _drive(urls: Sequence[str], work: Sequence[deque[Graph]], slots: int) -> DriveResult:
    async with httpx.AsyncClient(timeout=120) as http:
        instances = [_Instance(http, url) for url in urls]
        for instance in instances:
            await instance.connect()
        started = time.monotonic()
        try:
            feeds = (i.feed(own, slots) for i, own in zip(instances, work, strict=True))
            counts = await asyncio.gather(*feeds)
        finally:
            for instance in instances:
                await instance.close()
        makespan = time.monotonic() - started
    return DriveResult(makespan, [c[0] for c in counts], sum(c[1] for c in counts))


class _Instance:
    def __init__(self, http: httpx.AsyncClient, url: str) -> None:
        self.http, self.url = http, url
        self.client_id = uuid.uuid4().hex
        self.waiting: dict[str, asyncio.Future[None]] = {}
        self.socket: ClientConnection | None = None
        self.reader: asyncio.Task[None] | None = None

    async def connect(self) -> None:
        ws_url = self.url.replace("http://", "ws://", 1) + f"/ws?clientId={self.client_id}"
        self.socket = await connect(ws_url, max_size=None)
        self.reader = asyncio.create_task(self._read(self.socket))

    async def close(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.socket is not None:
            await self.socket.close()

    async def _read(self, socket: ClientConnection) -> None:
        async for message in socket:
            if isinstance(message, bytes):
                continue  # preview frames
            event = json.loads(message)
            data = event.get("data") or {}
            waiter = self.waiting.get(data.get("prompt_id", ""))
            if waiter is None or waiter.done():
                continue
            kind = event.get("type")
            # Not `execution_success`: ComfyUI sends it before writing the history entry;
            # `executing` with node null comes after (main.py prompt_worker, task_done).
            if kind == "executing" and data["node"] is None:
                waiter.set_result(None)
            elif kind in ("execution_error", "execution_interrupted"):
                waiter.set_exception(RuntimeError(f"{self.url}: {kind} {data}"))

    async def feed(self, work: deque[Graph], slots: int) -> tuple[int, int]:
        """(prompts run, images fetched): `slots` submitters share the sweep's work."""
        downloads: list[asyncio.Task[int]] = []
        done = await asyncio.gather(*(self._submitter(work, downloads) for _ in range(slots)))
        images = await asyncio.gather(*downloads)
        return sum(done), sum(images)

    async def _submitter(self, work: deque[Graph], downloads: list[asyncio.Task[int]]) -> int:
        count = 0
        while work:
            prompt_id = await self._run(work.popleft())
            # The slot is refilled before the images come down: the best a script can do.
            downloads.append(asyncio.create_task(self._download(prompt_id)))
            count += 1
        return count

    async def _run(self, graph: Graph) -> str:
        prompt_id = str(uuid.uuid4())
        self.waiting[prompt_id] = asyncio.get_running_loop().create_future()
        body = {"prompt": graph, "client_id": self.client_id, "prompt_id": prompt_id}
        response = await self.http.post(f"{self.url}/prompt", json=body)
        try:
            response.raise_for_status()
            await self.waiting[prompt_id]
        finally:
            del self.waiting[prompt_id]
        return prompt_id

    async def _download(self, prompt_id: str) -> int:
        response = await self.http.get(f"{self.url}/history/{prompt_id}")
        outputs = response.raise_for_status().json()[prompt_id]["outputs"]
        images = [image for node in outputs.values() for image in node.get("images", [])]
        for image in images:
            params = {key: image[key] for key in ("filename", "subfolder", "type")}
            (await self.http.get(f"{self.url}/view", params=params)).raise_for_status()
        return len(images)
