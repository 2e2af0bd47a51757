"""Simulated model nodes: distinct images per seed, sampler progress, and counted model loads."""

from __future__ import annotations

import io
import itertools
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.sync.client import connect

from tests.standin.wire import (
    Message,
    capture,
    demo_graph,
    output_image,
    read_until_done,
    submit,
    txt2img_graph,
    unique,
    wait_history,
)
from tests.support.standin_process import Standin

pytestmark = pytest.mark.timeout(60)
SD15 = "v1-5-pruned-emaonly.safetensors"
DREAMSHAPER = "dreamshaper_8.safetensors"


def run(standin: Standin, http: httpx.Client, graph: dict[str, Any]) -> tuple[str, list[Message]]:
    client_id = str(uuid.uuid4())
    with connect(standin.ws_url(client_id)) as ws:
        ws.recv(timeout=5)
        prompt_id = submit(http, graph, client_id)
        return prompt_id, read_until_done(ws, prompt_id)


def pixels(http: httpx.Client, prompt_id: str, node_id: str = "7") -> bytes:
    response = http.get("/view", params=output_image(wait_history(http, prompt_id), node_id))
    return Image.open(io.BytesIO(response.content)).convert("RGB").tobytes()


def test_two_seeds_give_two_images_and_a_seed_gives_the_same_one_again(
    standin: Standin, http: httpx.Client
) -> None:
    prefix = unique("seeds")
    first, _ = run(standin, http, txt2img_graph(prefix, seed=1))
    second, _ = run(standin, http, txt2img_graph(prefix, seed=2))
    again, _ = run(standin, http, txt2img_graph(prefix, seed=1))
    assert pixels(http, first) != pixels(http, second)
    assert pixels(http, first) == pixels(http, again)


def test_sampler_reports_every_step(standin: Standin, http: httpx.Client) -> None:
    _, messages = run(standin, http, txt2img_graph(unique("steps"), seed=3, steps=5))
    progress = [m["data"] for m in messages if m["type"] == "progress"]
    assert [(p["value"], p["max"], p["node"]) for p in progress] == [
        (i, 5, "5") for i in range(1, 6)
    ]
    assert set(progress[0]) == {"value", "max", "prompt_id", "node"}


def loads(http: httpx.Client) -> int:
    return int(http.get("/system_stats").json()["standin"]["checkpoint_loads"])


def test_checkpoint_loads_count_only_real_loader_executions(
    standin: Standin, http: httpx.Client
) -> None:
    run(standin, http, demo_graph(unique("flush")))  # the cache now holds no loader
    counts = [loads(http)]
    for ckpt, seed in ((SD15, 1), (SD15, 2), (DREAMSHAPER, 1), (SD15, 3)):
        run(standin, http, txt2img_graph(unique("loads"), seed=seed, ckpt=ckpt))
        counts.append(loads(http))
    steps = [after - before for before, after in itertools.pairwise(counts)]
    assert steps == [1, 0, 1, 1]  # same checkpoint again: cached; A, B, A: reloaded

    assert http.post("/free", json={"free_memory": True}).status_code == 200
    time.sleep(0.2)  # flags are applied by the executor between prompts
    run(standin, http, txt2img_graph(unique("loads"), seed=4, ckpt=SD15))
    assert loads(http) == counts[-1] + 1


def test_interrupt_during_sampling(standin: Standin, http: httpx.Client) -> None:
    client_id = str(uuid.uuid4())
    with connect(standin.ws_url(client_id)) as ws:
        ws.recv(timeout=5)
        graph = txt2img_graph(unique("long"), seed=5, steps=2000, ckpt=DREAMSHAPER)
        prompt_id = submit(http, graph, client_id)
        while json.loads(ws.recv(timeout=10))["type"] != "progress":
            pass
        http.post("/interrupt", json={"prompt_id": prompt_id})
        messages = read_until_done(ws, prompt_id)
    interrupted = next(m["data"] for m in messages if m["type"] == "execution_interrupted")
    assert interrupted["node_id"] == "5"
    assert interrupted["node_type"] == "KSampler"
    assert "1" in interrupted["executed"]  # the loader ran; the sampler did not finish
    assert "5" not in interrupted["executed"]


@pytest.mark.parametrize("node_class", ["ImageBlur", "KSampler", "SaveImage"])
def test_object_info_is_the_real_one(http: httpx.Client, node_class: str) -> None:
    expected = capture(f"get_object_info_{node_class}")
    assert http.get(f"/object_info/{node_class}").json() == expected
    assert http.get("/object_info").json()[node_class] == expected[node_class]


def test_model_lists_are_filled_and_overridable(
    http: httpx.Client, start_standin: Callable[..., Standin], tmp_path: Path
) -> None:
    info = http.get("/object_info/CheckpointLoaderSimple").json()
    assert SD15 in info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"checkpoints": ["only.safetensors"]}))
    other = start_standin("--models", str(models))
    with httpx.Client(base_url=other.base_url) as client:
        info = client.get("/object_info/CheckpointLoaderSimple").json()
        assert info["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0] == [
            "only.safetensors"
        ]
        assert client.get("/models/checkpoints").json() == ["only.safetensors"]
        loras = client.get("/object_info/LoraLoader").json()["LoraLoader"]["input"]["required"]
        assert "add_detail.safetensors" in loras["lora_name"][0]
