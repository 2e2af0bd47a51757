"""Retrying a sweep's failed (or, on request, cancelled) runs: each is queued again as a new
attempt, the attempt it ended with kept in its history, and the sweep put back to work
(`app.services.reopening`). A succeeded run is never executed again."""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from sqlalchemy.orm import Session

from app.api.errors import Conflict
from app.db.models import Run, Sweep
from app.domain.states import RunStatus
from app.services import quotas, reopening
from app.stores import reruns
from app.stores import sweeps as sweep_store


def retry_runs(
    session: Session,
    celery: Celery,
    sweep: Sweep,
    statuses: Sequence[RunStatus],
    error_type: str | None,
) -> int:
    """Queue the matching runs again; returns how many. Raises Conflict, changing nothing,
    when no run matches: a retry that would do nothing is reported, not silently accepted.
    The runs join the team's queue, so its queued cap applies as to a submission's."""
    ended = reruns.ended_runs(session, sweep.id, statuses)
    chosen = [run for run in ended if _matches(run, error_type)]
    if not chosen:
        status = sweep_store.sweep_status(session, sweep.id)
        session.rollback()
        raise Conflict(
            f"sweep {sweep.id} is {status} and has no {_described(statuses, error_type)}"
        )
    try:
        quotas.check_requeue(session, sweep.team_id, len(chosen))
    except Exception:
        session.rollback()  # the runs' locks go now, not when the request's session closes
        raise
    queued = reruns.requeue_ended(session, sweep.id, chosen)
    reopening.reopen_sweep(session, celery, sweep.id)
    session.commit()
    return queued


def _matches(run: Run, error_type: str | None) -> bool:
    """`error_type` is the kind of the stored error (`RunError.kind`: execution, validation,
    transport, timeout, interrupted, protocol); None matches every run."""
    if error_type is None:
        return True
    return isinstance(run.error, dict) and run.error.get("kind") == error_type


def _described(statuses: Sequence[RunStatus], error_type: str | None) -> str:
    runs = " or ".join(status.value for status in statuses) + " run"
    return (
        f"{runs} with an error of kind {error_type!r} to retry"
        if error_type
        else f"{runs} to retry"
    )
