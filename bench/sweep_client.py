"""Submitting a sweep to the running API over HTTP, as a user does, and timing it to its
final status from the database (watching there costs the API nothing)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import httpx
import sqlalchemy as sa

from app.domain.assignments import full_assignment, plan_fixed
from bench.system import System

FINAL = ("succeeded", "partial", "failed", "cancelled")


@dataclass(frozen=True)
class SweepTiming:
    sweep_id: UUID
    status: str
    makespan_s: float  # submission to the sweep's final status, grids included
    runs_done_s: float  # submission to the last run recorded
    submitted_at: float  # epoch seconds
    first_runs_s: list[float]  # submission to each instance's first run started, in order

    @property
    def grid_s(self) -> float:
        """The last run recorded to the sweep's final status: the grid step."""
        return self.makespan_s - self.runs_done_s


class SweepClient:
    def __init__(self, system: System) -> None:
        self.http = httpx.Client(
            base_url=system.api_url,
            headers={"Authorization": f"Bearer {system.api_key}"},
            timeout=60,
        )
        self.engine = sa.create_engine(system.settings.database_url)

    def __enter__(self) -> SweepClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.engine.dispose()

    def run_sweep(self, body: dict[str, Any]) -> SweepTiming:
        submitted_at = time.time()
        response = self.http.post("/v1/sweeps", json=body)
        if response.status_code != 201:
            raise SystemExit(f"submission refused: {response.status_code} {response.text}")
        sweep_id = UUID(response.json()["id"])
        status, finished_at = self._wait_final(sweep_id)
        runs_done = self._last_run_finished(sweep_id)
        first_runs = [at - submitted_at for at in self._first_run_per_instance(sweep_id)]
        return SweepTiming(
            sweep_id,
            status,
            finished_at - submitted_at,
            runs_done - submitted_at,
            submitted_at,
            first_runs,
        )

    def _wait_final(self, sweep_id: UUID) -> tuple[str, float]:
        query = sa.text("SELECT status, finished_at FROM sweeps WHERE id = :id")
        while True:
            with self.engine.connect() as connection:
                status, finished = connection.execute(query, {"id": sweep_id}).one()
            if status in FINAL and finished is not None:
                return str(status), finished.timestamp()
            time.sleep(0.02)

    def _last_run_finished(self, sweep_id: UUID) -> float:
        query = sa.text("SELECT max(finished_at) FROM runs WHERE sweep_id = :id")
        with self.engine.connect() as connection:
            finished: datetime = connection.execute(query, {"id": sweep_id}).scalar_one()
        return finished.timestamp()

    def _first_run_per_instance(self, sweep_id: UUID) -> list[float]:
        query = sa.text(
            "SELECT min(started_at) AS first FROM runs "
            "WHERE sweep_id = :id AND started_at IS NOT NULL GROUP BY instance ORDER BY first"
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query, {"id": sweep_id}).scalars()
            return [started.timestamp() for started in rows]

    def assignments(self, sweep_id: UUID) -> list[dict[str, Any]]:
        """Each run's full parameter values, in index order: what it stores, composed with
        its sweep's fixed values as every reader of the service does."""
        query = sa.text('SELECT own_values FROM runs WHERE sweep_id = :id ORDER BY "index"')
        plan = sa.text("SELECT plan FROM sweeps WHERE id = :id")
        with self.engine.connect() as connection:
            fixed = plan_fixed(connection.execute(plan, {"id": sweep_id}).scalar_one())
            rows = connection.execute(query, {"id": sweep_id})
            return [dict(full_assignment(fixed, row[0])) for row in rows]
