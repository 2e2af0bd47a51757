"""The pool's operator controls end to end: tags route runs, a drained instance finishes
what it has and starts nothing more, an instance failing transport in a row is benched."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx
import pytest

from tests.integration.conftest import System, all_runs, wait_for_sweep
from tests.integration.test_sweep_execution import GRID_3X4, submit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[..., httpx.Client]


def pool_of(admin: httpx.Client) -> dict[str, dict[str, Any]]:
    listed = admin.get("/v1/instances")
    assert listed.status_code == 200, listed.text
    return {i["url"]: i for i in listed.json()}


def test_runs_needing_a_tag_never_land_on_an_untagged_instance(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory(tags=["sdxl"])
    tagged, plain = (s.base_url for s in system.instances)
    api = api_for(system)
    sweep_id = submit(api, {**GRID_3X4, "requires": ["sdxl"]})
    sweep = wait_for_sweep(api, sweep_id, system)
    assert sweep["status"] == "succeeded", system.logs()
    assert sweep["requires"] == ["sdxl"]
    assert {r["instance"] for r in all_runs(api, sweep_id)} == {tagged}
    assert plain != tagged


def test_a_drained_instance_finishes_its_prompt_and_starts_nothing_more(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory("--step-ms", "300")
    api, admin = api_for(system), api_for(system, role="admin")
    drained = system.instances[0].base_url
    sweep_id = submit(
        api,
        {
            "workflow": "sd15-txt2img",
            "base": {"steps": 10, "width": 64, "height": 64},
            "axes": [{"param": "seed", "values": "1-10"}],
        },
    )
    running = _wait_for_a_run_on(api, sweep_id, drained, system)
    answer = admin.post(f"/v1/instances/{pool_of(admin)[drained]['id']}/drain")
    assert answer.status_code == 200, answer.text
    drained_at = time.time()
    sweep = wait_for_sweep(api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    runs = all_runs(api, sweep_id)
    on_drained = [r for r in runs if r["instance"] == drained]
    # What was running there when it was drained finished there, nothing started after.
    assert running in {r["index"] for r in on_drained}
    assert all(datetime.fromisoformat(r["started_at"]).timestamp() < drained_at for r in on_drained)
    assert len(on_drained) < len(runs)
    assert pool_of(admin)[drained]["drained"] is True


def _wait_for_a_run_on(api: httpx.Client, sweep_id: str, url: str, system: System) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for run in all_runs(api, sweep_id):
            if run["status"] == "running" and run["instance"] == url:
                return int(run["index"])
        time.sleep(0.1)
    pytest.fail(f"no run started on {url}:\n{system.logs()}")


def test_an_instance_failing_transport_three_times_is_benched_and_others_take_the_work(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory(timings={"INSTANCE_BENCH_AFTER": "3", "INSTANCE_BENCH_S": "600"})
    failing, working = (s.base_url for s in system.instances)
    # It answers health checks but refuses every prompt with a 503: a transport error.
    httpx.post(f"{failing}/standin/faults", json={"spec": "unavailable:*"}, timeout=5)
    api, admin = api_for(system), api_for(system, role="admin")
    # Enough runs that the failing instance claims three before the working one drains the
    # queue. Once a prompt fails there, the tasks on it move to the working instance and stay
    # (they refill the slot they freed); only the hint each retry sends after its backoff
    # finds the failing one again, emptiest once a health check has let it back.
    sweep_id = submit(api, {**GRID_3X4, "seeds": {"count": 12, "start": 1}})
    sweep = wait_for_sweep(api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    assert {r["instance"] for r in all_runs(api, sweep_id)} == {working}
    benched = pool_of(admin)[failing]
    assert benched["benched_until"] is not None, system.logs()
    # Both of its slots may have been claimed before the third failure benched it.
    assert benched["failure_streak"] >= 3
    assert pool_of(admin)[working]["benched_until"] is None
    assert f"instance_benched url={failing}" in system.processes["worker"].log()
