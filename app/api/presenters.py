"""Maps stored rows to response shapes; the one place that knows both."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from app.api.schemas.sweeps import (
    AttemptRead,
    AxisRead,
    RunRead,
    SweepEstimate,
    SweepRead,
    SweepSummary,
)
from app.db.models import Run, RunAttempt
from app.domain.assignments import full_assignment
from app.domain.contracts import JsonValue
from app.domain.states import EXECUTED_RUN_STATUSES, RunStatus, SweepStatus
from app.domain.tags import split_tags


class SweepShown(Protocol):
    """What the sweep presenters read: a `Sweep`, or its `app.stores.sweeps.status_row`."""

    @property
    def id(self) -> UUID: ...
    @property
    def workflow(self) -> str: ...
    @property
    def status(self) -> SweepStatus: ...
    @property
    def total(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def plan(self) -> dict[str, Any]: ...
    @property
    def started_at(self) -> datetime | None: ...
    @property
    def finished_at(self) -> datetime | None: ...
    @property
    def required_tags(self) -> str: ...
    @property
    def estimate(self) -> dict[str, Any] | None: ...
    @property
    def source_sweep_id(self) -> UUID | None: ...


def sweep_summary(sweep: SweepShown) -> SweepSummary:
    return SweepSummary(
        id=sweep.id,
        workflow=sweep.workflow,
        status=sweep.status,
        total=sweep.total,
        created_at=sweep.created_at,
    )


def sweep_read(
    sweep: SweepShown, counts: Mapping[RunStatus, int], pinned: tuple[int, str] | None = None
) -> SweepRead:
    """`pinned` is the number and hash of the workflow version the sweep runs."""
    all_counts = {s: counts.get(s, 0) for s in RunStatus}
    executed = sum(all_counts[s] for s in EXECUTED_RUN_STATUSES)
    plan = sweep.plan
    swept = {axis["param"] for axis in plan["axes"]}
    return SweepRead(
        **sweep_summary(sweep).model_dump(),
        counts=all_counts,
        progress=executed / sweep.total if sweep.total else 1.0,
        mode=plan["mode"],
        axes=[AxisRead(param=a["param"], values=a["values"]) for a in plan["axes"]],
        seeds=plan["seeds"],
        # An axis an extension added keeps its first value in the stored fixed ones too,
        # for the runs made before it (`app.domain.extension`); it is not fixed any more.
        fixed={k: v for k, v in plan["fixed"].items() if k not in swept},
        started_at=sweep.started_at,
        finished_at=sweep.finished_at,
        workflow_version=None if pinned is None else pinned[0],
        workflow_hash=None if pinned is None else pinned[1],
        requires=list(split_tags(sweep.required_tags or "")),
        estimate=None if sweep.estimate is None else SweepEstimate.model_validate(sweep.estimate),
        elapsed_s=_elapsed_s(sweep),
        source_sweep_id=sweep.source_sweep_id,
    )


def _elapsed_s(sweep: SweepShown) -> float | None:
    if sweep.started_at is None or sweep.finished_at is None:
        return None
    return (sweep.finished_at - sweep.started_at).total_seconds()


def run_read(run: Run, fixed: Mapping[str, JsonValue]) -> RunRead:
    """`fixed` is the run's sweep's fixed values (`plan_fixed(sweep.plan)`)."""
    return RunRead(
        index=run.index,
        status=run.status,
        assignment=full_assignment(fixed, run.own_values),
        attempts=run.attempts,
        error=run.error,
        instance=run.instance,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def attempt_read(attempt: RunAttempt) -> AttemptRead:
    return AttemptRead(
        attempt=attempt.attempt,
        status=attempt.status,
        instance=attempt.instance,
        started_at=attempt.started_at,
        finished_at=attempt.finished_at,
        error=attempt.error,
    )
