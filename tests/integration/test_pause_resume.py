"""Pausing and resuming a sweep end to end: real HTTP, Postgres, Redis, a Celery worker, the
reconciler and two stand-in instances whose runs take about 0.3 s each."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System, all_runs, wait_for_sweep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]
# 6 steps of 50 ms: a run holds its slot about 0.3 s. Two instances of two slots each run
# four prompts at a time.
SLOW_STEPS = ("--step-ms", "50")
RUNS = 24


def seeds(**extra: Any) -> dict[str, Any]:
    return {
        "workflow": "sd15-txt2img",
        "base": {"steps": 6, "width": 64, "height": 64},
        "axes": [{"param": "seed", "values": f"1-{RUNS}"}],
        **extra,
    }


def post(api: httpx.Client, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = api.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, Any] = response.json()
    return answer


def started_ats(api: httpx.Client, sweep_id: str) -> list[datetime]:
    return [
        datetime.fromisoformat(run["started_at"])
        for run in all_runs(api, sweep_id)
        if run["started_at"] is not None
    ]


def wait_until(
    api: httpx.Client, sweep_id: str, system: System, done: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    sweep: dict[str, Any] = {}
    while time.monotonic() < deadline:
        sweep = api.get(f"/v1/sweeps/{sweep_id}").json()
        if done(sweep):
            return sweep
        time.sleep(0.05)
    pytest.fail(f"sweep never got there: {sweep}\n{system.logs()}")


def executed(sweep: dict[str, Any]) -> int:
    counts: dict[str, int] = sweep["counts"]
    return counts["succeeded"] + counts["failed"]


def test_a_paused_sweep_starts_no_new_prompt_and_resumes_to_success(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory(*SLOW_STEPS)
    api = api_for(system)
    sweep_id = post(api, "/v1/sweeps", seeds())["id"]
    wait_until(api, sweep_id, system, lambda s: executed(s) >= 4)

    paused = post(api, f"/v1/sweeps/{sweep_id}/pause")
    paused_at = datetime.now().astimezone()
    assert paused["status"] == "paused"
    # Every run started before the pause committed is in its answer's counts; none after.
    started = RUNS - paused["counts"]["queued"]
    assert paused["counts"]["running"] <= 4  # at most one dispatch: the pool's slots

    # The prompts already running finish and are recorded; the sweep stays paused through
    # a few reconciler passes (a stall period is 2 s) and nothing else starts.
    drained = wait_until(api, sweep_id, system, lambda s: s["counts"]["running"] == 0)
    time.sleep(3)
    held = api.get(f"/v1/sweeps/{sweep_id}").json()
    assert held["status"] == "paused", system.logs()
    assert held["counts"] == drained["counts"]
    assert executed(held) == started
    assert held["counts"]["queued"] == RUNS - started > 0
    assert all(at < paused_at for at in started_ats(api, sweep_id))

    resumed_at = datetime.now().astimezone()
    assert post(api, f"/v1/sweeps/{sweep_id}/resume")["status"] == "running"
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    assert sweep["counts"]["succeeded"] == RUNS
    later = [at for at in started_ats(api, sweep_id) if at > paused_at]
    assert len(later) == RUNS - started
    assert all(at > resumed_at for at in later)


def test_a_sweep_submitted_paused_starts_nothing_until_resumed(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory(*SLOW_STEPS)
    api = api_for(system)
    created = post(api, "/v1/sweeps", seeds(paused=True))
    sweep_id = created["id"]
    assert created["status"] == "paused"
    time.sleep(3)  # the reconciler's passes, a stall period and more
    held = api.get(f"/v1/sweeps/{sweep_id}").json()
    assert held["status"] == "paused", system.logs()
    assert held["counts"]["queued"] == RUNS
    assert held["started_at"] is None
    assert started_ats(api, sweep_id) == []

    assert post(api, f"/v1/sweeps/{sweep_id}/resume")["status"] == "pending"
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    assert sweep["counts"]["succeeded"] == RUNS
    assert sweep["started_at"] is not None


def test_a_paused_sweep_can_be_cancelled(system_factory: SystemFactory, api_for: ApiFor) -> None:
    system = system_factory(*SLOW_STEPS)
    api = api_for(system)
    sweep_id = post(api, "/v1/sweeps", seeds())["id"]
    wait_until(api, sweep_id, system, lambda s: executed(s) >= 1)
    post(api, f"/v1/sweeps/{sweep_id}/pause")
    assert post(api, f"/v1/sweeps/{sweep_id}/cancel")["status"] == "cancelled"
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "cancelled"
    assert sweep["counts"]["queued"] == sweep["counts"]["running"] == 0
