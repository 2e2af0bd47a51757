"""A whole sweep against a real ComfyUI at COMFYUI_URL (skipped when it is not set).

The system of tests/integration (a Celery worker process and the reconciler on the real
Postgres and Redis, each system in a database and on a queue of its own, the API in-process)
with the pool set to the one real instance and no stand-ins. Uses only model-free nodes
(demo-noise), so a CPU-only ComfyUI 0.3.x with no model files answers.
Run: COMFYUI_URL=http://127.0.0.1:8188 .venv/bin/pytest tests/live -m live
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from app.comfy.client import ComfyClient
from app.domain.infotext import infotext
from app.domain.ui_format import ui_to_api
from app.main import create_app
from app.settings import Settings
from tests.api.conftest import mint_key
from tests.conftest import REDIS_URL, scratch_database, scratch_queue
from tests.integration.conftest import FAST_TIMINGS, System, all_runs, wait_for_sweep
from tests.support.serving import serve

COMFYUI_URL = os.environ.get("COMFYUI_URL", "").rstrip("/")
PARAMS_DIR = Path(__file__).resolve().parents[2] / "params"

pytestmark = [
    pytest.mark.live,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not COMFYUI_URL, reason="set COMFYUI_URL to run against a real ComfyUI"),
]

GRID_2X2: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 64},
    "axes": [
        {"param": "blur_radius", "values": [1, 3]},
        {"param": "strength", "values": [0.25, 0.75]},
    ],
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def live_settings(tmp_path: Path) -> Iterator[Settings]:
    """A scratch database and queue, and the pool set to COMFYUI_URL alone."""
    with scratch_database("live") as database_url, scratch_queue() as queue_name:
        yield Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue_name,
            comfy_instances=COMFYUI_URL,
            data_dir=tmp_path / "data",
            object_info_ttl_s=0,
        )


@pytest.fixture
def live_system(live_settings: Settings, tmp_path: Path) -> Iterator[System]:
    """A Celery worker process and the reconciler, as tests/integration starts them."""
    env = {
        **os.environ,
        "DATABASE_URL": live_settings.database_url,
        "REDIS_URL": REDIS_URL,
        "QUEUE_NAME": live_settings.queue_name,
        "COMFY_INSTANCES": COMFYUI_URL,
        "DATA_DIR": str(live_settings.data_dir),
        **FAST_TIMINGS,
    }
    system = System(live_settings, env, instances=[], workdir=tmp_path)
    try:
        system.start_worker()
        system.start_reconciler()
        yield system
    finally:
        system.stop_all()


@pytest.fixture
def live_api(live_settings: Settings) -> Iterator[httpx.Client]:
    app = create_app(live_settings)
    headers = {"Authorization": f"Bearer {mint_key(app, 'live')}"}
    with serve(app) as base_url, httpx.Client(base_url=base_url, headers=headers) as client:
        yield client
    app.state.engine.dispose()


def test_a_2x2_demo_sweep_on_real_comfyui_gives_four_annotated_pngs(
    live_system: System, live_api: httpx.Client
) -> None:
    response = live_api.post("/v1/sweeps", json=GRID_2X2)
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]

    sweep = wait_for_sweep(live_api, sweep_id, live_system, timeout=120)

    assert sweep["status"] == "succeeded", live_system.logs()
    assert sweep["counts"]["succeeded"] == 4
    runs = all_runs(live_api, sweep_id)
    assert [r["index"] for r in runs] == [0, 1, 2, 3]
    assert {r["instance"] for r in runs} == {COMFYUI_URL}
    hashes = set()
    for run in runs:
        [output] = live_api.get(f"/v1/sweeps/{sweep_id}/runs/{run['index']}").json()["outputs"]
        body = _check_output(live_api, output)
        hashes.add(output["sha256"])
        chunks = _text_chunks(body)
        _check_chunks(chunks, sweep_id, run)
    assert len(hashes) == 4


def _check_output(
    api: httpx.Client, output: dict[str, Any], size: tuple[int, int] = (64, 64)
) -> bytes:
    """The stored file is a real PNG of `size` whose bytes match the recorded size and hash."""
    assert (output["kind"], output["mime"]) == ("image", "image/png")
    served = api.get(output["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    body = served.content
    assert body.startswith(PNG_SIGNATURE)
    assert len(body) == output["size"]
    assert hashlib.sha256(body).hexdigest() == output["sha256"]
    with Image.open(io.BytesIO(body)) as image:
        image.verify()  # CRCs and chunk structure, after our chunks were spliced in
    with Image.open(io.BytesIO(body)) as image:
        assert (image.format, image.size) == ("PNG", size)
    return body


def _text_chunks(body: bytes) -> dict[str, str]:
    with Image.open(io.BytesIO(body)) as image:
        image.load()
        return dict(image.text)  # type: ignore[attr-defined]


def _check_chunks(chunks: dict[str, str], sweep_id: str, run: dict[str, Any]) -> None:
    # ComfyUI's own `prompt` chunk survives our rewrite: the graph as it ran, our values in it.
    prompt = json.loads(chunks["prompt"])
    assert prompt["4"]["class_type"] == "SaveImage"
    assert prompt["4"]["inputs"]["filename_prefix"].startswith(f"comfy-sweep/{sweep_id}/")
    assert prompt["3"]["inputs"]["blur_radius"] == run["assignment"]["blur_radius"]
    assert prompt["2"]["inputs"]["strength"] == run["assignment"]["strength"]
    assert prompt["1"]["inputs"]["width"] == 64
    record = json.loads(chunks["comfy_sweep"])
    assert record == {
        "sweep_id": sweep_id,
        "run_index": run["index"],
        "assignment": run["assignment"],
    }
    assert chunks["parameters"] == infotext(run["assignment"])


def test_a_value_real_comfyui_accepts_but_fails_on_is_one_failed_run(
    live_system: System, live_api: httpx.Client
) -> None:
    """ImageBlur reflect-pads by its radius, which torch refuses once the radius reaches the
    image's size: ComfyUI validates such a prompt (and so does our preflight) and fails it at
    execution. That run fails once, naming the node; the other one succeeds."""
    body = {
        "workflow": "demo-noise",
        "base": {"width": 8, "height": 8},
        "axes": [{"param": "blur_radius", "values": [1, 8]}],
    }
    response = live_api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]

    sweep = wait_for_sweep(live_api, sweep_id, live_system, timeout=120)

    assert sweep["status"] == "partial", live_system.logs()
    ok, failed = all_runs(live_api, sweep_id)
    assert (ok["status"], failed["status"]) == ("succeeded", "failed")
    error = failed["error"]
    assert (error["kind"], error["node_id"], error["class_type"]) == ("execution", "3", "ImageBlur")
    assert error["details"] == "RuntimeError"
    assert "Padding size" in error["message"]
    assert failed["attempts"] == 1  # execution errors are not retried


def test_cancel_takes_every_prompt_of_ours_off_the_real_instance(
    live_system: System, live_api: httpx.Client
) -> None:
    """Runs of a few seconds each on a CPU (1024² and a 63-pixel kernel): cancelled after the
    first one, the queued prompt is deleted and the running one interrupted on ComfyUI."""
    body = {
        "workflow": "demo-noise",
        "base": {"width": 1024, "height": 1024, "blur_radius": 31, "sigma": 10.0},
        "axes": [{"param": "seed", "values": "1-6"}],
    }
    response = live_api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]
    _wait_for_succeeded(live_api, sweep_id, live_system, at_least=1)

    cancelled = live_api.post(f"/v1/sweeps/{sweep_id}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    deadline = time.monotonic() + 60
    left = _prompts_of(sweep_id)
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = _prompts_of(sweep_id)
    assert left == [], live_system.logs()
    runs = all_runs(live_api, sweep_id)
    assert {r["status"] for r in runs} <= {"succeeded", "cancelled"}
    assert any(r["status"] == "cancelled" for r in runs)


def _wait_for_succeeded(api: httpx.Client, sweep_id: str, system: System, at_least: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if api.get(f"/v1/sweeps/{sweep_id}").json()["counts"]["succeeded"] >= at_least:
            return
        time.sleep(0.1)
    pytest.fail(f"no run succeeded:\n{system.logs()}")


def _prompts_of(sweep_id: str) -> list[str]:
    """Ids of the sweep's prompts running or pending on the instance, known by the output
    prefix the worker gives them (queue items are [number, prompt_id, graph, extra, outputs])."""
    queue = httpx.get(f"{COMFYUI_URL}/queue", timeout=5).json()
    prefix = f"comfy-sweep/{sweep_id}/"
    return [
        item[1]
        for item in queue["queue_running"] + queue["queue_pending"]
        if item[2]["4"]["inputs"]["filename_prefix"].startswith(prefix)
    ]


def test_the_demo_contract_promises_only_values_real_comfyui_accepts() -> None:
    """Every demo-noise bound lies within the live node's: preflight against the real pool
    can refuse none of them, so no demo-noise value gives a real-ComfyUI 422 (the sd15 test
    below covers that path)."""
    contract = json.loads((PARAMS_DIR / "demo-noise.schema.json").read_text())
    graph = json.loads((PARAMS_DIR.parent / "workflows" / "demo-noise.api.json").read_text())
    object_info = httpx.get(f"{COMFYUI_URL}/object_info", timeout=30).json()
    for name, prop in contract["properties"].items():
        for binding in prop["x-comfy"]:
            class_type = graph[binding["node"]]["class_type"]
            spec = object_info[class_type]["input"]["required"][binding["input"]]
            kind, limits = spec[0], spec[1]
            assert kind == {"integer": "INT", "number": "FLOAT"}[prop["type"]], name
            assert limits["min"] <= prop["minimum"], name
            assert prop["maximum"] <= limits["max"], name


def test_a_checkpoint_the_real_instance_lacks_is_refused_with_422(live_api: httpx.Client) -> None:
    """Preflight against the live `/object_info`: a value within our contract that the real
    ComfyUI would refuse (a checkpoint it does not have) is a 422, and nothing is stored."""
    checkpoint = "comfy-sweep-live-missing.safetensors"
    specs = httpx.get(f"{COMFYUI_URL}/object_info/CheckpointLoaderSimple", timeout=30).json()
    options = specs["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"][0]
    if checkpoint in options:
        pytest.skip(f"{COMFYUI_URL} has {checkpoint}")
    body = {
        "workflow": "sd15-txt2img",
        "base": {"checkpoint": checkpoint, "steps": 1, "width": 64, "height": 64},
        "axes": [{"param": "seed", "values": [1, 2]}],
    }
    response = live_api.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    located = [p for p in problems if p["loc"] == ["body", "base", "checkpoint"]]
    assert located, problems
    assert located[0]["type"] == "value_not_in_list"
    assert located[0]["input"] == checkpoint
    assert live_api.get("/v1/sweeps").json()["total"] == 0


def test_a_ui_registered_workflows_pngs_reload_as_the_graph_that_ran(
    live_system: System, live_api: httpx.Client
) -> None:
    """Registered in the UI format (converted, and its contract drafted, with the live specs):
    each output's `workflow` chunk holds that UI graph with the run's own widget values, and
    converting it back gives the graph that ran, which the real ComfyUI accepts again."""
    ui = json.loads((PARAMS_DIR.parent / "tests/fixtures/ui/demo-noise.json").read_text())
    created = live_api.post("/v1/workflows", json={"name": "live-ui-noise", "graph": ui})
    assert created.status_code == 201, created.text
    body = {
        "workflow": "live-ui-noise",
        "base": {"width": 32, "height": 24, "seed": 4242},
        "axes": [{"param": "blur_radius", "values": [1, 2]}],
    }
    response = live_api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]

    sweep = wait_for_sweep(live_api, sweep_id, live_system, timeout=120)

    assert sweep["status"] == "succeeded", live_system.logs()
    object_info = httpx.get(f"{COMFYUI_URL}/object_info", timeout=30).json()
    for run in all_runs(live_api, sweep_id):
        [output] = live_api.get(f"/v1/sweeps/{sweep_id}/runs/{run['index']}").json()["outputs"]
        chunks = _text_chunks(_check_output(live_api, output, size=(32, 24)))
        workflow = json.loads(chunks["workflow"])
        assert [n["id"] for n in workflow["nodes"]] == [n["id"] for n in ui["nodes"]]
        assert workflow["links"] == ui["links"]
        widgets = {node["id"]: node["widgets_values"] for node in workflow["nodes"]}
        assert widgets[1] == [32, 24, 1, 0]
        assert widgets[2] == [4242, "fixed", 0.5]
        assert widgets[3] == [run["assignment"]["blur_radius"], 1.0]
        ran = json.loads(chunks["prompt"])
        reloaded = ui_to_api(workflow, object_info)
        # Only bound inputs are written back: the output folder stays the registered one.
        assert reloaded["4"]["inputs"]["filename_prefix"] == "comfy-sweep/demo-noise"
        reloaded["4"]["inputs"]["filename_prefix"] = ran["4"]["inputs"]["filename_prefix"]
        assert reloaded == ran
        _resubmit(reloaded)


def _resubmit(graph: dict[str, Any]) -> None:
    """ComfyUI validates and runs the graph again, with no node refused."""
    graph["4"]["inputs"]["filename_prefix"] = f"comfy-sweep-live/{uuid.uuid4().hex[:12]}/again"

    async def run() -> None:
        prompt_id, client_id = str(uuid.uuid4()), str(uuid.uuid4())
        async with ComfyClient(COMFYUI_URL) as client:
            accepted = await client.submit(graph, prompt_id=prompt_id, client_id=client_id)
            entry = await client.wait(prompt_id, client_id=client_id, timeout=60.0)
            await client.delete_history([prompt_id])
        assert accepted.node_errors == {}
        assert (entry.status_str, len(entry.outputs)) == ("success", 1)

    asyncio.run(run())
