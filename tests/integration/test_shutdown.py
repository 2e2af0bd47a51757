"""Stopping a worker on purpose (SIGTERM, as `docker stop` does): its runs are handed back
with their prompts left running, and another worker follows them within seconds instead of
waiting for their lease to lapse."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from tests.integration.conftest import System, all_runs, wait_for_sweep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]
log = logging.getLogger(__name__)

RUNS = 8
# `docker stop -t 20`: SIGTERM, then SIGKILL for a worker still there after this long. Celery's
# own warm shutdown of an idle worker takes 4-5 s here, on top of the hand-back.
STOP_GRACE_S = 20.0
# Far below the 60 s lease this test keeps: only a hand-back can be this quick.
HANDED_OVER_WITHIN_S = 10.0


def test_a_worker_stopped_mid_run_hands_its_runs_to_another_within_seconds(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    # Prompts of about 15 s, two per instance: a stopping worker that waited for its prompts
    # would hold the stop for 15-30 s. The lease keeps its default of 60 s.
    system = system_factory("--step-ms", "1500", timings={"LEASE_S": "60", "HEARTBEAT_S": "5"})
    api = api_for(system)
    response = api.post("/v1/sweeps", json=_slow_sweep(RUNS))
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]
    held = _wait_for_claims(system, count=4)  # every slot of both instances, all worker A's
    successor = system.start_worker("worker-b")
    _wait_for_log(system, successor.name, "ready.")

    stopped_at = time.monotonic()
    leaving = system.processes["worker"].popen
    leaving.send_signal(signal.SIGTERM)
    handed_over_after, exited_after = _watch_the_stop(system, held, leaving, stopped_at)
    log.info(
        "worker_stop handed_over_after_s=%.2f exited_after_s=%s", handed_over_after, exited_after
    )

    assert handed_over_after < HANDED_OVER_WITHIN_S, system.logs()
    assert leaving.returncode == 0, f"worker not stopped in {STOP_GRACE_S}s:\n{system.logs()}"
    sweep = wait_for_sweep(api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    runs = all_runs(api, sweep_id)
    assert {r["status"] for r in runs} == {"succeeded"}
    # Followed, never cancelled and sent again: one attempt and one prompt per run.
    assert {r["attempts"] for r in runs} == {1}, runs
    assert sum(_prompts_submitted(s.base_url) for s in system.instances) == RUNS
    # A prompt that ends within the stopping worker's grace is recorded by it as usual (on a
    # busy machine worker B may start late enough for that); every other one is handed back.
    leaving_log = system.processes["worker"].log()
    handed_back = [run for run in held if f"run_handed_back run={run}" in leaving_log]
    assert handed_back, system.logs()
    for run_id in held:
        if run_id in handed_back:
            assert f"run_taken_over run={run_id}" in successor.log()
        else:
            assert f"run_succeeded run={run_id}" in leaving_log, system.logs()


def _slow_sweep(runs: int) -> dict[str, Any]:
    return {
        "workflow": "sd15-txt2img",
        "base": {"steps": 10, "width": 64, "height": 64},
        "axes": [{"param": "seed", "values": f"1-{runs}"}],
    }


def _running(system: System) -> dict[str, str | None]:
    """run id → the task holding it, for every running run."""
    engine = sa.create_engine(system.settings.database_url, poolclass=sa.NullPool)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text("SELECT id, claimed_by FROM runs WHERE status = 'running'")
        ).all()
    engine.dispose()
    return {str(run): None if task is None else str(task) for run, task in rows}


def _wait_for_claims(system: System, count: int) -> dict[str, str]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        running = _running(system)
        if len(running) >= count and all(running.values()):
            return {run: task for run, task in running.items() if task}
        time.sleep(0.2)
    pytest.fail(f"fewer than {count} runs running:\n{system.logs()}")


def _watch_the_stop(
    system: System, held: dict[str, str], leaving: subprocess.Popen[bytes], since: float
) -> tuple[float, float | None]:
    """Seconds from `since` until every held run was claimed by another task or finished, and
    until the stopped worker exited (None: killed after STOP_GRACE_S, as `docker stop` does)."""
    handed_over: float | None = None
    exited: float | None = None
    while time.monotonic() < since + 90:
        elapsed = time.monotonic() - since
        if leaving.returncode is None and leaving.poll() is not None:
            exited = elapsed
        elif leaving.returncode is None and elapsed > STOP_GRACE_S:
            leaving.kill()
            leaving.wait(timeout=10)
        running = _running(system)
        if handed_over is None and all(
            run not in running or running[run] not in (None, held[run]) for run in held
        ):
            handed_over = elapsed
        if handed_over is not None and leaving.returncode is not None:
            return handed_over, exited
        time.sleep(0.1)
    pytest.fail(f"runs not taken over:\n{system.logs()}")


def _wait_for_log(system: System, name: str, text: str) -> None:
    deadline = time.monotonic() + 60
    while text not in system.processes[name].log():
        if time.monotonic() > deadline:
            pytest.fail(f"{name} never logged {text!r}:\n{system.logs()}")
        time.sleep(0.2)


def _prompts_submitted(base_url: str) -> int:
    stats = httpx.get(f"{base_url}/system_stats", timeout=5).json()
    return int(stats["standin"]["prompts_submitted"])
