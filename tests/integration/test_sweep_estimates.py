"""A dry run's estimate against what the pool then does: history from one sweep, a second
one dry-run, then submitted and timed. Stand-ins with a known step time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System, wait_for_sweep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]
STEP_MS = 20


def sd15(steps: list[int], seeds: int) -> dict[str, Any]:
    # One size throughout: the stand-in's step time does not grow with the image, so only
    # the steps tell the sweeps apart.
    return {
        "workflow": "sd15-txt2img",
        "base": {"width": 64, "height": 64},
        "axes": [{"param": "steps", "values": steps}],
        "seeds": {"count": seeds, "start": 1},
    }


def makespan_s(sweep: dict[str, Any]) -> float:
    started = datetime.fromisoformat(sweep["started_at"])
    return (datetime.fromisoformat(sweep["finished_at"]) - started).total_seconds()


def test_a_dry_runs_makespan_is_within_30_percent_of_the_sweep_it_then_runs(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory("--step-ms", str(STEP_MS), "--checkpoint-load-ms", "200")
    api = api_for(system)
    first = sd15([10, 20], seeds=8)  # 16 runs
    assert api.post("/v1/sweeps", params={"dry_run": "true"}, json=first).json()["reason"] == (
        "no history yet"
    )
    created = api.post("/v1/sweeps", json=first)
    assert created.status_code == 201, created.text
    history = wait_for_sweep(api, created.json()["id"], system, timeout=120)
    assert history["status"] == "succeeded", system.logs()

    second = sd15([30, 40], seeds=12)  # 24 runs, 840 steps
    dry = api.post("/v1/sweeps", params={"dry_run": "true"}, json=second)
    assert dry.status_code == 200, dry.text
    estimate = dry.json()
    assert (estimate["runs"], estimate["steps"]) == (24, 840)
    assert estimate["history_runs"] == 16
    assert estimate["instances"] == 2
    assert estimate["model_loads"] == 0  # both instances hold the checkpoint already
    assert estimate["reason"] is None
    # The stand-in's sampler alone takes this long; the estimate includes the rest of a run.
    assert estimate["gpu_seconds"]["median"] >= 840 * STEP_MS / 1000
    assert estimate["gpu_seconds"]["p90"] >= estimate["gpu_seconds"]["median"]

    submitted = api.post("/v1/sweeps", json=second)
    assert submitted.status_code == 201, submitted.text
    sweep = wait_for_sweep(api, submitted.json()["id"], system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    actual = makespan_s(sweep)
    assert sweep["elapsed_s"] == pytest.approx(actual)
    assert sweep["estimate"]["makespan_s"] == pytest.approx(estimate["makespan_s"], rel=0.05)
    assert estimate["makespan_s"] == pytest.approx(actual, rel=0.3), (estimate, actual)
