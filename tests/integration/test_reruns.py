"""Retrying and extending ended sweeps end to end: real HTTP, Postgres, Redis, a Celery
worker and a stand-in ComfyUI. Only the runs that need it execute again (counted by the
stand-in), earlier attempts are kept, and the rebuilt grid holds every cell."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from app.grids.render import CELLS_KEY
from tests.integration.conftest import System, all_runs, wait_for_sweep
from tests.support.standin_process import Standin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]

GRID_3X2: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 48, "height": 48},
    "axes": [
        {"param": "blur_radius", "values": [1, 3, 5]},
        {"param": "strength", "values": [0.2, 0.4]},
    ],
}


def submit(api: httpx.Client, body: dict[str, Any]) -> str:
    response = api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def executed(standin: Standin) -> int:
    """Prompts the stand-in's executor has started since it began."""
    faults = httpx.get(f"{standin.base_url}/standin/faults", timeout=5).json()
    count: int = faults["prompts_executed"]
    return count


def grid_cells(api: httpx.Client, sweep_id: str) -> list[dict[str, Any]]:
    """The cells the grid page shows, in grid order, as its PNG records them."""
    grid = api.get(f"/v1/sweeps/{sweep_id}/grid")
    assert grid.status_code == 200, grid.text
    with Image.open(io.BytesIO(grid.content)) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        cells: list[dict[str, Any]] = json.loads(image.text[CELLS_KEY])
    return cells


def test_retry_runs_only_the_failed_runs_keeps_their_first_errors_and_ends_succeeded(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    # One instance, so the 2nd and 4th prompts it executes are two distinct runs.
    system = system_factory("--faults", "fail:2,fail:4", instances=1)
    api = api_for(system)
    [standin] = system.instances
    sweep_id = submit(api, GRID_3X2)
    sweep = wait_for_sweep(api, sweep_id, system)
    assert (sweep["status"], sweep["counts"]["failed"]) == ("partial", 2), system.logs()
    before = {run["index"]: run for run in all_runs(api, sweep_id)}
    failed = sorted(i for i, run in before.items() if run["status"] == "failed")
    assert executed(standin) == 6

    response = api.post(f"/v1/sweeps/{sweep_id}/retry")
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["queued"]) == ("running", 2)
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    assert executed(standin) == 6 + 2

    for index, run in ((r["index"], r) for r in all_runs(api, sweep_id)):
        assert run["status"] == "succeeded"
        if index not in failed:
            assert run == before[index]  # not executed again
            continue
        detail = api.get(f"/v1/sweeps/{sweep_id}/runs/{index}").json()
        assert detail["attempts"] == 2
        [first] = detail["past_attempts"]
        assert (first["attempt"], first["status"]) == (1, "failed")
        assert first["error"] == before[index]["error"]
        assert first["error"]["kind"] == "execution"
        assert len(detail["outputs"]) == 1
    assert {cell["status"] for cell in grid_cells(api, sweep_id)} == {"succeeded"}


def test_extend_runs_only_the_new_cells_and_the_rebuilt_grid_holds_every_cell(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory(instances=1)
    api = api_for(system)
    [standin] = system.instances
    sweep_id = submit(api, GRID_3X2)
    assert wait_for_sweep(api, sweep_id, system)["status"] == "succeeded", system.logs()
    before = all_runs(api, sweep_id)
    assert len(grid_cells(api, sweep_id)) == 6

    body = {"axes": [{"param": "blur_radius", "values": [9]}]}
    response = api.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
    assert response.status_code == 200, response.text
    assert (response.json()["total"], response.json()["queued"]) == (8, 2)
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    assert executed(standin) == 6 + 2

    after = all_runs(api, sweep_id)
    assert after[:6] == before  # the same runs, started when they first were
    assert [(r["index"], r["assignment"]["blur_radius"]) for r in after[6:]] == [(6, 9), (7, 9)]
    # The grid places runs by assignment: blur_radius across (X), strength down (Y).
    cells = grid_cells(api, sweep_id)
    assert [c["status"] for c in cells] == ["succeeded"] * 8
    placed = [(c["assignment"]["blur_radius"], c["assignment"]["strength"]) for c in cells]
    assert placed == [(b, s) for s in (0.2, 0.4) for b in (1, 3, 5, 9)]
    pages = api.get(f"/v1/sweeps/{sweep_id}/grids").json()["pages"]
    assert sum(page["cells"] for page in pages) == 8


def test_a_cancelled_sweep_retried_runs_its_cancelled_runs_and_ends_succeeded(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    # The first two prompts hang until withdrawn: the sweep is cancelled with runs in flight.
    system = system_factory("--faults", "hang:1,hang:2", instances=1)
    api = api_for(system)
    [standin] = system.instances
    sweep_id = submit(api, GRID_3X2)
    wait_for_sweep(api, sweep_id, system, until="running")
    _wait_until(lambda: len(_prompts_on(standin)) == 2, system)
    assert api.post(f"/v1/sweeps/{sweep_id}/cancel").json()["status"] == "cancelled"
    _wait_until(lambda: not _prompts_on(standin), system)  # withdrawn
    assert wait_for_sweep(api, sweep_id, system)["counts"]["cancelled"] == 6

    response = api.post(f"/v1/sweeps/{sweep_id}/retry", json={"status": ["cancelled"]})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["queued"]) == ("running", 6)
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    withdrawn = [r for r in all_runs(api, sweep_id) if r["attempts"] == 2]
    assert len(withdrawn) == 2  # the two that hung had started once already
    for run in withdrawn:
        detail = api.get(f"/v1/sweeps/{sweep_id}/runs/{run['index']}").json()
        assert [a["status"] for a in detail["past_attempts"]] == ["cancelled"]
    assert {cell["status"] for cell in grid_cells(api, sweep_id)} == {"succeeded"}


def _prompts_on(standin: Standin) -> list[str]:
    queue = httpx.get(f"{standin.base_url}/queue", timeout=5).json()
    return [item[1] for item in queue["queue_running"] + queue["queue_pending"]]


def _wait_until(condition: Callable[[], bool], system: System, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, system.logs()
        time.sleep(0.2)
