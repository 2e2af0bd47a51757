"""Cancelling a sweep: queued runs stop at once; running prompts are withdrawn from their
instances by a worker (the API never calls ComfyUI itself)."""

from __future__ import annotations

from celery import Celery
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Sweep
from app.domain.states import CANCELLABLE, SweepStatus
from app.queue import CANCEL_PROMPTS, send_after_commit
from app.stores import runs, sweeps


def cancel_sweep(session: Session, celery: Celery, sweep: Sweep) -> bool:
    """True if this call cancelled it; False if it had already ended (nothing changes)."""
    # Runs first, the sweep row last, the order every run transition locks them in; a
    # sweep that turns out to have ended already takes the runs' change back with it.
    cancelled = runs.cancel_unfinished(session, sweep.id)
    if not sweeps.move_sweep(
        session,
        sweep.id,
        CANCELLABLE,
        SweepStatus.CANCELLED,
        event_data={"runs_cancelled": cancelled.queued},
        finished_at=utc_now(),
    ):
        session.rollback()
        return False
    send_after_commit(session, celery, CANCEL_PROMPTS, [str(sweep.id)])
    session.commit()
    return True
