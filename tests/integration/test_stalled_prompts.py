"""A prompt that hangs on one instance, silently, is interrupted after the stall time and its
run retried on the other instance, long before the run timeout."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System, all_runs, queue_of, wait_for_sweep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]

GRID_2X2: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 64},
    "axes": [
        {"param": "blur_radius", "values": [1, 3]},
        {"param": "strength", "values": [0.2, 0.4]},
    ],
}


def test_a_hanging_prompt_is_interrupted_and_its_run_retried_on_the_other_instance(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    # RUN_TIMEOUT_S keeps its default of an hour: only the stall time can end the hang.
    system = system_factory(timings={"PROMPT_STALL_S": "2"})
    stuck, other = system.instances
    stuck.set_faults("hang:1")  # the first prompt this instance starts never finishes
    api = api_for(system)
    response = api.post("/v1/sweeps", json=GRID_2X2)
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]
    started = time.monotonic()
    sweep = wait_for_sweep(api, sweep_id, system, timeout=60)
    took = time.monotonic() - started
    assert sweep["status"] == "succeeded", system.logs()
    runs = all_runs(api, sweep_id)
    assert {r["status"] for r in runs} == {"succeeded"}
    retried = [r for r in runs if r["attempts"] > 1]
    assert len(retried) == 1, runs
    assert (retried[0]["attempts"], retried[0]["instance"]) == (2, other.base_url)
    assert took < 60
    # Interrupted on the stuck instance: nothing of ours is left running or queued there.
    queue = queue_of(stuck)
    assert (queue["queue_running"], queue["queue_pending"]) == ([], [])
    log = system.processes["worker"].log()
    assert f"prompt made no progress for 2 s on 127.0.0.1:{stuck.port}; interrupted" in log
