"""Putting a sweep back to work after runs were queued in it again (a retry) or added to it
(an extension): the one step both share. Its caller has already moved the runs and their
counters in the same transaction, which locked the sweep row (`stores.sweeps.move_counts`),
so the status read here cannot change before the commit.

An ended sweep goes back to running and is finalized again when its new runs end: the
finalizer rebuilds its grids from every run (`workers.finalization`). A sweep still pending,
running or paused keeps its status (a paused one's new runs wait for its resume). A
finalizing one is refused: its finalizer is about to stamp a final status that the new runs
would contradict.
"""

from __future__ import annotations

from uuid import UUID

from celery import Celery
from sqlalchemy.orm import Session

from app.api.errors import Conflict
from app.domain.states import REOPENABLE, SweepStatus
from app.queue import START_SWEEP, send_after_commit
from app.stores import sweeps

STILL_OPEN = (SweepStatus.PENDING, SweepStatus.RUNNING, SweepStatus.PAUSED)


def reopen_sweep(session: Session, celery: Celery, sweep_id: UUID) -> None:
    """Make the sweep's newly queued runs claimable and ask workers for them after the
    commit. Raises Conflict (the transaction rolled back) while it is finalizing."""
    if not sweeps.reopen_sweep(session, sweep_id, REOPENABLE):
        status = sweeps.sweep_status(session, sweep_id)
        if status not in STILL_OPEN:
            session.rollback()
            raise Conflict(
                f"sweep {sweep_id} is {status}: its grids are being built; try again once "
                "it has ended"
            )
    # The start task sends a work message per slot of the pool to a running sweep.
    send_after_commit(session, celery, START_SWEEP, [str(sweep_id)])
