"""Sweeps executed end to end: real Postgres, Redis, a Celery worker process, the reconciler
and two stand-in ComfyUI instances; and the faults a production pool meets."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import redis
import sqlalchemy as sa
from PIL import Image

from app.queue import make_celery
from app.settings import PROJECT_ROOT
from tests.conftest import REDIS_URL
from tests.integration.conftest import System, all_runs, queue_of, wait_for_sweep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]

GRID_3X4: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 64},
    "axes": [
        {"param": "blur_radius", "values": "1-5 (+2)"},
        {"param": "strength", "values": [0.2, 0.4, 0.6, 0.8]},
    ],
}


def submit(api: httpx.Client, body: dict[str, Any]) -> str:
    response = api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def outputs_of(api: httpx.Client, sweep_id: str, index: int) -> list[dict[str, Any]]:
    run = api.get(f"/v1/sweeps/{sweep_id}/runs/{index}").json()
    found: list[dict[str, Any]] = run["outputs"]
    return found


def assert_every_run_once(api: httpx.Client, sweep_id: str, total: int) -> list[dict[str, Any]]:
    runs = all_runs(api, sweep_id)
    assert [r["index"] for r in runs] == list(range(total))
    assert {r["status"] for r in runs} == {"succeeded"}
    for run in runs:
        assert len(outputs_of(api, sweep_id, run["index"])) == 1, run
    return runs


def test_a_3x4_sweep_gives_12_distinct_outputs(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory()
    api = api_for(system)
    sweep_id = submit(api, GRID_3X4)
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    assert sweep["counts"]["succeeded"] == 12
    assert_every_run_once(api, sweep_id, 12)
    hashes = {outputs_of(api, sweep_id, i)[0]["sha256"] for i in range(12)}
    assert len(hashes) == 12
    image = api.get(outputs_of(api, sweep_id, 5)[0]["url"])
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    assert b"comfy_sweep" in image.content
    assert b"parameters" in image.content
    pages = api.get(f"/v1/sweeps/{sweep_id}/grids").json()["pages"]
    assert len(pages) == 1
    grid = api.get(f"/v1/sweeps/{sweep_id}/grid")
    assert grid.status_code == 200
    assert grid.headers["content-type"] == "image/png"
    assert (pages[0]["width"], pages[0]["height"]) == _png_size(grid.content)


def test_each_output_was_made_from_its_runs_full_assignment(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    # Runs store only what they vary; the worker must still patch the sweep's fixed values
    # (base and contract defaults) into every prompt it sends.
    system = system_factory()
    api = api_for(system)
    body = {**GRID_3X4, "base": {"width": 48, "height": 40, "color": 255, "sigma": 2.5}}
    body["seeds"] = {"count": 2, "start": 7}
    body["axes"] = [GRID_3X4["axes"][1]]
    sweep_id = submit(api, body)
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    bindings = _bindings("demo-noise")
    runs = assert_every_run_once(api, sweep_id, 8)
    for run in runs:
        assignment = run["assignment"]
        assert assignment == {**sweep["fixed"], **_varied(run["index"])}
        image = api.get(outputs_of(api, sweep_id, run["index"])[0]["url"])
        with Image.open(io.BytesIO(image.content)) as png:
            chunks = dict(getattr(png, "text", {}))
            assert png.size == (48, 40)
        prompt = json.loads(chunks["prompt"])
        sent = {name: prompt[node]["inputs"][key] for name, (node, key) in bindings.items()}
        assert sent == assignment
        assert json.loads(chunks["comfy_sweep"])["assignment"] == assignment


def _varied(index: int) -> dict[str, Any]:
    # Seeds vary fastest, then the strength axis.
    return {"seed": 7 + index % 2, "strength": [0.2, 0.4, 0.6, 0.8][index // 2]}


def _bindings(workflow: str) -> dict[str, tuple[str, str]]:
    """Parameter → (node id, input name) from the workflow's shipped schema."""
    schema = json.loads((PROJECT_ROOT / "params" / f"{workflow}.schema.json").read_text())
    found = {}
    for name, spec in schema["properties"].items():
        (binding,) = spec["x-comfy"]
        found[name] = (binding["node"], binding["input"])
    return found


def test_a_run_comfyui_rejects_fails_naming_node_and_input(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory("--faults", "reject:2")
    api = api_for(system)
    sweep_id = submit(api, {**GRID_3X4, "axes": GRID_3X4["axes"][:1]})
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "partial", system.logs()
    failed = [r for r in all_runs(api, sweep_id) if r["status"] == "failed"]
    assert len(failed) >= 1
    error = failed[0]["error"]
    assert error["kind"] == "validation"
    assert error["node_id"]
    assert error["input_name"]
    assert failed[0]["attempts"] == 1  # validation errors are not retried


def test_an_instance_killed_mid_sweep_still_completes_every_run_once(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory("--step-ms", "60")
    api = api_for(system)
    sweep_id = submit(api, _slow_sweep(16))
    _wait_for_progress(api, sweep_id, system, at_least=2)
    system.instances[0].process.kill()
    sweep = wait_for_sweep(api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    runs = assert_every_run_once(api, sweep_id, 16)
    survivor = system.instances[1].base_url
    assert any(r["attempts"] == 2 and r["instance"] == survivor for r in runs), runs


def test_a_worker_killed_mid_run_is_redelivered_and_completes_once(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    # Runs of about 6 s, so the kill surely lands while the chosen run is executing.
    system = system_factory("--step-ms", "600")
    api = api_for(system)
    sweep_id = submit(api, _slow_sweep(6))
    _wait_for_status(api, sweep_id, system, "running")
    victim, run_id = _worker_child_mid_run(system)
    os.kill(victim, signal.SIGKILL)
    assert _run_status(system, run_id) == "running"  # killed mid-run, not after it
    sweep = wait_for_sweep(api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    assert_every_run_once(api, sweep_id, 6)
    # Recovered either by Celery redelivering the message (reject_on_worker_lost) or by the
    # reconciler once the lease lapsed, whichever comes first; never both to completion.
    log = system.processes["worker"].log()
    assert f"run_redelivered run={run_id}" in log or f"run_taken_over run={run_id}" in log


def test_redis_flushed_mid_sweep_the_reconciler_finishes_it(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory("--step-ms", "40")
    api = api_for(system)
    sweep_id = submit(api, _slow_sweep(12))
    _wait_for_progress(api, sweep_id, system, at_least=2)
    # Redis restarts empty while the workers restart: every message in flight is gone, so
    # only the database still knows the sweep has work left.
    system.processes["worker"].stop()
    _flush_queue(system)
    assert api.get(f"/v1/sweeps/{sweep_id}").json()["counts"]["queued"] > 0
    system.start_worker()
    sweep = wait_for_sweep(api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    assert_every_run_once(api, sweep_id, 12)
    assert f"sweep_stalled sweep={sweep_id}" in system.processes["reconciler"].log()


def test_a_start_message_lost_with_redis_is_sent_again(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory()
    system.processes["worker"].stop()
    api = api_for(system)
    sweep_id = submit(api, {**GRID_3X4, "axes": GRID_3X4["axes"][:1]})
    _flush_queue(system)
    system.start_worker()
    sweep = wait_for_sweep(api, sweep_id, system, timeout=60)
    assert sweep["status"] == "succeeded", system.logs()
    assert f"sweep_not_started sweep={sweep_id}" in system.processes["reconciler"].log()


def _flush_queue(system: System) -> None:
    broker = redis.Redis.from_url(REDIS_URL)
    broker.delete(system.settings.queue_name, "unacked", "unacked_index")
    broker.close()


def test_cancel_leaves_no_prompt_of_ours_on_any_instance(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory("--step-ms", "100")
    api = api_for(system)
    sweep_id = submit(api, _slow_sweep(20))
    _wait_for_progress(api, sweep_id, system, at_least=1)
    cancelled = api.post(f"/v1/sweeps/{sweep_id}/cancel")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ours = [p for s in system.instances for p in _prompt_ids(queue_of(s))]
        if not ours:
            break
        time.sleep(0.2)
    assert ours == [], system.logs()
    runs = all_runs(api, sweep_id)
    assert {r["status"] for r in runs} <= {"succeeded", "cancelled"}
    assert any(r["status"] == "cancelled" for r in runs)
    # The grids of a cancelled sweep show what finished.
    deadline = time.monotonic() + 20
    while api.get(f"/v1/sweeps/{sweep_id}/grid").status_code != 200:
        assert time.monotonic() < deadline, system.logs()
        time.sleep(0.2)


def _png_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def _prompt_ids(queue: dict[str, Any]) -> list[str]:
    return [item[1] for item in queue["queue_running"] + queue["queue_pending"]]


def _slow_sweep(runs: int) -> dict[str, Any]:
    """sd15-txt2img on the stand-in: simulated sampling steps make each run take a while."""
    return {
        "workflow": "sd15-txt2img",
        "base": {"steps": 10, "width": 64, "height": 64},
        "axes": [{"param": "seed", "values": f"1-{runs}"}],
    }


def _wait_for_status(api: httpx.Client, sweep_id: str, system: System, status: str) -> None:
    wait_for_sweep(api, sweep_id, system, timeout=30, until=status)


def _wait_for_progress(api: httpx.Client, sweep_id: str, system: System, at_least: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        counts = api.get(f"/v1/sweeps/{sweep_id}").json()["counts"]
        if counts["succeeded"] >= at_least:
            return
        time.sleep(0.1)
    pytest.fail(f"no progress:\n{system.logs()}")


def _worker_child_mid_run(system: System) -> tuple[int, str]:
    """(pid, run id) of a worker child executing a run right now, as Celery and the database
    report it: the task's id is the run's `claimed_by`."""
    inspector = make_celery(system.settings).control.inspect(timeout=1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        claims = _running_claims(system)
        for tasks in (inspector.active() or {}).values():
            for task in tasks:
                if task["id"] in claims:
                    return int(task["worker_pid"]), claims[task["id"]]
        time.sleep(0.2)
    pytest.fail(f"no worker child is executing a run:\n{system.logs()}")


def _running_claims(system: System) -> dict[str, str]:
    engine = sa.create_engine(system.settings.database_url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT claimed_by, id FROM runs WHERE status = 'running'")
        ).all()
    engine.dispose()
    return {str(task): str(run) for task, run in rows if task}


def _run_status(system: System, run_id: str) -> str:
    engine = sa.create_engine(system.settings.database_url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        status = connection.execute(
            sa.text("SELECT status FROM runs WHERE id = :id"), {"id": run_id}
        ).scalar_one()
    engine.dispose()
    return str(status)


def test_preflight_refuses_a_value_the_instances_do_not_offer(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory()
    api = api_for(system)
    body = {
        "workflow": "sd15-txt2img",
        "axes": [
            {"param": "seed", "values": [1, 2]},
            {"param": "checkpoint", "values": ["v1-5-pruned-emaonly.safetensors", "nope.ckpt"]},
        ],
    }
    response = api.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["body", "axes", 1, "values"]
    assert problem["input"] == "nope.ckpt"
    assert problem["type"] == "value_not_in_list"
    # The first run using it is index 2 (seed varies fastest); the node and input are named.
    assert "run 2" in problem["msg"]
    assert "CheckpointLoaderSimple" in problem["msg"]
    assert "ckpt_name" in problem["msg"]
    assert api.get("/v1/sweeps").json()["total"] == 0
