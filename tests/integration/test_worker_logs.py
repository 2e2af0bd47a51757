"""The worker's and the reconciler's logs as a log shipper reads them: JSON, one object per
line, and a finished run's line names its sweep, run, prompt and instance."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa

from app.db.models import Run
from tests.integration.conftest import System, wait_for_sweep

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]

TWO_RUNS: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 64},
    "axes": [{"param": "strength", "values": [0.2, 0.8]}],
}


def json_lines(system: System, name: str) -> list[dict[str, Any]]:
    """Every line of a process's log, each of which must be a JSON object."""
    lines = []
    for number, line in enumerate(system.processes[name].log().splitlines(), 1):
        try:
            lines.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{name}.log line {number} is not JSON: {line!r}\n{system.logs()}")
    return lines


def run_ids_by_index(database_url: str, sweep_id: str) -> dict[int, str]:
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.select(Run.index, Run.id).where(Run.sweep_id == UUID(sweep_id))
            )
            return {index: str(run_id) for index, run_id in rows}
    finally:
        engine.dispose()


def test_a_finished_runs_line_carries_its_sweep_run_and_prompt(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory()
    api = api_for(system)
    response = api.post("/v1/sweeps", json=TWO_RUNS)
    assert response.status_code == 201, response.text
    sweep_id = response.json()["id"]
    assert wait_for_sweep(api, sweep_id, system)["status"] == "succeeded", system.logs()
    run_ids = run_ids_by_index(system.settings.database_url, sweep_id)
    time.sleep(1)  # the reconciler's next pass

    # Read while the worker runs: at SIGTERM Celery prints one plain line of its own.
    worker = json_lines(system, "worker")
    succeeded = [line for line in worker if line["message"].startswith("run_succeeded")]
    assert sorted(line["run_index"] for line in succeeded) == [0, 1], system.logs()
    instances = {standin.base_url for standin in system.instances}
    for line in succeeded:
        assert line["sweep_id"] == sweep_id
        assert line["run_id"] == line["prompt_id"] == run_ids[line["run_index"]]
        assert line["instance"] in instances
        assert line["task"] == "runs.work"
        assert line["task_id"]
        assert line["level"] == "INFO"
        assert line["logger"] == "workers.execution"
    started = [line for line in worker if line["message"].startswith("sweep_started")]
    assert [line["sweep_id"] for line in started] == [sweep_id]
    assert any(line["logger"].startswith("celery") for line in worker)  # Celery's own, too
    assert json_lines(system, "reconciler")
