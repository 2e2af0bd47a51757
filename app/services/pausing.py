"""Pausing and resuming a sweep: while it is paused no queued run of it starts; the prompts
already running finish and are recorded as usual. Resuming wakes the workers the way
starting a sweep does (the API never claims runs itself)."""

from __future__ import annotations

from celery import Celery
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Sweep
from app.domain.states import FINAL_SWEEP_STATUSES, PAUSABLE, RESUMABLE, SweepStatus, resumed_status
from app.queue import START_SWEEP, send_after_commit
from app.stores import sweeps


class WrongStatus(Exception):
    """The sweep's status allows neither the move nor leaving it as it is."""

    def __init__(self, sweep: Sweep, action: str) -> None:
        super().__init__(f"sweep {sweep.id} is {sweep.status.value}; it cannot be {action}")
        self.status = sweep.status


def pause_sweep(session: Session, sweep: Sweep) -> bool:
    """True if this call paused it; False if it was paused already. Raises WrongStatus for a
    sweep that has ended or is finalizing (no run of it is queued any more)."""
    # The compare-and-set clears the sweep's `active_sweeps` flag in the same transaction,
    # under the sweep row's lock, which every claim takes as it starts a run
    # (`runs.start_run`): once this commits no claim starts another run of it.
    if sweeps.move_sweep(session, sweep.id, PAUSABLE, SweepStatus.PAUSED):
        session.commit()
        return True
    session.rollback()
    session.refresh(sweep)
    if sweep.status is SweepStatus.PAUSED:
        return False
    raise WrongStatus(sweep, "paused")


def resume_sweep(session: Session, celery: Celery, sweep: Sweep) -> bool:
    """True if this call resumed it; False if it was not paused (pending, running or
    finalizing: nothing is held back). Raises WrongStatus for a sweep that has ended."""
    to = resumed_status(started=sweep.started_at is not None)
    # Stamped as hinted by the start message below: the reconciler re-sends work only if
    # nothing happens for a while after it.
    if sweeps.move_sweep(session, sweep.id, RESUMABLE, to, hinted_at=utc_now()):
        # Starts a sweep that never ran; for one that did, sends a work message per slot of
        # the pool, as starting it did (`workers.dispatching.start_sweep`).
        send_after_commit(session, celery, START_SWEEP, [str(sweep.id)])
        session.commit()
        return True
    session.rollback()
    session.refresh(sweep)
    if sweep.status in FINAL_SWEEP_STATUSES:
        raise WrongStatus(sweep, "resumed")
    return False
