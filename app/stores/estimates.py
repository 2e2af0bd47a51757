"""SQL for sweep estimates: a workflow's recent finished runs on the pool, the queue ahead of
a priority, and what the instances hold. Reads only, each bounded however long the history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import ActiveSweep, Instance, Run, Sweep, WorkflowVersion
from app.domain.assignments import plan_fixed
from app.domain.states import RunStatus

# The history an estimate reads: enough runs for a stable median, few enough to read at
# every submission; and at most this many of the workflow's latest sweeps to find them in.
HISTORY_RUNS = 1000
HISTORY_SWEEPS = 100


@dataclass(frozen=True, slots=True)
class FinishedRun:
    instance: str
    started_at: datetime
    # When its prompt was done on the instance, else when the run finished.
    ended_at: datetime
    own_values: Mapping[str, Any]
    fixed: Mapping[str, Any]


def recent_runs(
    session: Session, workflow: str, workflow_version_id: UUID, instances: Sequence[str]
) -> list[FinishedRun]:
    """The latest succeeded runs (up to HISTORY_RUNS) of the workflow named `workflow` that
    `workflow_version_id` is a version of (not another team's of the same name), that ran on
    one of `instances`."""
    sweeps = _sweeps_to_read(session, workflow, workflow_version_id)
    if not sweeps or not instances:
        return []
    ended = sa.func.coalesce(Run.prompt_done_at, Run.finished_at)
    query = (
        sa.select(Run.sweep_id, Run.instance, Run.started_at, ended, Run.own_values)
        .where(
            Run.sweep_id.in_(list(sweeps)),
            Run.status == RunStatus.SUCCEEDED,
            Run.instance.in_(list(instances)),
            Run.started_at.is_not(None),
        )
        .order_by(Run.finished_at.desc())
        .limit(HISTORY_RUNS)
    )
    return [
        FinishedRun(instance, started_at, end, own, sweeps[sweep_id])
        for sweep_id, instance, started_at, end, own in session.execute(query)
        if end is not None
    ]


def _sweeps_to_read(
    session: Session, workflow: str, workflow_version_id: UUID
) -> dict[UUID, Mapping[str, Any]]:
    """The workflow's latest sweeps with succeeded runs, newest first, until they hold
    HISTORY_RUNS of them, each with its fixed values; read off ix_sweeps_workflow_created_at."""
    same_workflow = sa.select(WorkflowVersion.id).where(
        WorkflowVersion.workflow_id
        == sa.select(WorkflowVersion.workflow_id)
        .where(WorkflowVersion.id == workflow_version_id)
        .scalar_subquery()
    )
    rows = session.execute(
        sa.select(Sweep.id, Sweep.succeeded_count)
        .where(
            Sweep.workflow == workflow,
            Sweep.workflow_version_id.in_(same_workflow),
            Sweep.succeeded_count > 0,
        )
        .order_by(Sweep.created_at.desc())
        .limit(HISTORY_SWEEPS)
    ).all()
    chosen, runs = [], 0
    for sweep_id, succeeded in rows:
        if runs >= HISTORY_RUNS:
            break
        chosen.append(sweep_id)
        runs += succeeded
    if not chosen:
        return {}
    plans = session.execute(sa.select(Sweep.id, Sweep.plan).where(Sweep.id.in_(chosen)))
    return {sweep_id: plan_fixed(plan) for sweep_id, plan in plans}


def queued_at_or_above(session: Session, priority: int) -> int:
    """Queued runs of every team's sweeps at `priority` or higher: those served first."""
    query = (
        sa.select(sa.func.coalesce(sa.func.sum(Sweep.queued_count), 0))
        .select_from(ActiveSweep)
        .join(Sweep, Sweep.id == ActiveSweep.sweep_id)
        .where(ActiveSweep.priority >= priority)
    )
    return session.scalar(query) or 0


def usable_instances(session: Session, urls: Sequence[str]) -> dict[str, str | None]:
    """Of `urls`, those not drained, with the model each holds (None: unknown). An instance
    the table does not list yet is taken as usable, holding nothing."""
    rows = session.execute(sa.select(Instance.url, Instance.drained, Instance.model_key))
    known = {url: (drained, model_key) for url, drained, model_key in rows}
    return {
        url: known[url][1] if url in known else None
        for url in urls
        if url not in known or not known[url][0]
    }
