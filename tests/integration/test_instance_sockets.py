"""A worker process follows the prompts it submits on one WebSocket per instance while it
keeps taking runs (`app.comfy.channel`), and closes it once it stops: far fewer connections
than runs, and none left open for nobody to read."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System, all_runs, logged_events, wait_for_sweep
from tests.integration.test_sweep_execution import submit
from tests.support.standin_process import Standin

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[..., httpx.Client]
RUNS = 80


def standin_stats(standin: Standin) -> dict[str, Any]:
    stats: dict[str, dict[str, Any]] = httpx.get(
        f"{standin.base_url}/system_stats", timeout=5
    ).json()
    return stats["standin"]


def test_runs_share_their_workers_sockets_and_none_is_left_open(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory("--step-ms", "2")
    api = api_for(system)
    body = {
        "workflow": "sd15-txt2img",
        "base": {"steps": 2, "width": 64, "height": 64},
        "axes": [{"param": "seed", "values": f"1-{RUNS}"}],
    }
    sweep_id = submit(api, body)
    sweep = wait_for_sweep(api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    runs = all_runs(api, sweep_id)
    assert len(runs) == RUNS
    assert all(run["status"] == "succeeded" for run in runs)
    # The prompts' own events were heard: every prompt but an instance's first finds its
    # checkpoint loaded and its prompt text encoded, in ComfyUI's cache.
    # (`run.cached` comes from a prompt's own `execution_cached` frame, which ComfyUI sends
    # only to the socket of its client id.)
    cached = [kind for _, kind in logged_events(system, sweep_id) if kind == "run.cached"]
    assert len(cached) >= RUNS - 10
    stats = [standin_stats(standin) for standin in system.instances]
    assert sum(s["prompts_executed"] for s in stats) >= RUNS
    # A socket per slot's task and instance, not per run (one a run before channels).
    opened = sum(s["sockets_opened"] for s in stats)
    assert 0 < opened <= RUNS // 4, (opened, system.logs())
    # With nothing left to claim, each task ends and hangs up.
    deadline = time.monotonic() + 15
    while any(standin_stats(s)["sockets_open"] for s in system.instances):
        assert time.monotonic() < deadline, [standin_stats(s) for s in system.instances]
        time.sleep(0.2)
