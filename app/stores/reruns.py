"""SQL for queuing a sweep's ended runs again (`POST /v1/sweeps/{id}/retry`): they are
read and locked, then moved back to queued as new attempts, each earlier attempt kept in
`run_attempts`, with the sweep's counters moved in the same transaction."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Run
from app.domain.states import RunStatus
from app.stores import attempts, journal
from app.stores.attempts import PastAttempt
from app.stores.sweeps import move_counts

_runs = cast(sa.Table, Run.__table__)

ENDED_AGAIN = (RunStatus.FAILED, RunStatus.CANCELLED)  # what a retry may queue again


def ended_runs(session: Session, sweep_id: UUID, statuses: Iterable[RunStatus]) -> list[Run]:
    """The sweep's runs in `statuses` (failed or cancelled only: a succeeded run is never
    executed again), locked in id order as `runs.cancel_unfinished` locks them, so a retry and a
    cancellation never wait on each other, and none of them can change before the commit."""
    wanted = [status for status in statuses if status in ENDED_AGAIN]
    query = (
        sa.select(Run)
        .where(Run.sweep_id == sweep_id, Run.status.in_(wanted))
        .order_by(Run.id)
        .with_for_update()
    )
    return list(session.scalars(query))


def requeue_ended(session: Session, sweep_id: UUID, ended: Sequence[Run]) -> int:
    """Queue each of `ended` (from `ended_runs`, still locked) for a new attempt, keeping the
    attempt it ended with in `run_attempts`; returns how many moved. Compare-and-set on
    (id, status): a run that is no longer in the status it was read in stays as it is."""
    moved: Counter[RunStatus] = Counter()
    queued: list[int] = []
    for status in ENDED_AGAIN:
        ids = [run.id for run in ended if run.status is status]
        if ids:
            params = {"ids": ids, "was": status, "now": utc_now()}
            indexes = list(session.scalars(_REQUEUE_ENDED, params))
            moved[status] = len(indexes)
            queued.extend(indexes)
    # A run cancelled before it was ever started has no attempt to keep.
    attempts.add_attempts(session, [_past(run) for run in ended if run.attempts > 0])
    deltas = {status: -count for status, count in moved.items()}
    total = sum(moved.values())
    team_id = move_counts(session, sweep_id, {**deltas, RunStatus.QUEUED: total})
    if team_id is not None:
        journal.runs_queued(session, team_id, sweep_id, queued, "retry")
    return total


_REQUEUE_ENDED = (
    sa.update(_runs)
    .where(
        _runs.c.id.in_(sa.bindparam("ids", expanding=True)), _runs.c.status == sa.bindparam("was")
    )
    .values(
        status=RunStatus.QUEUED,
        error=None,
        instance=None,
        started_at=None,
        finished_at=None,
        prompt_done_at=None,
        claimed_by=None,
        lease_expires_at=None,
        queued_at=sa.bindparam("now"),
    )
    .returning(_runs.c.index)
)


def _past(run: Run) -> PastAttempt:
    return PastAttempt(
        run.id,
        run.attempts,
        run.status.value,
        run.instance,
        run.started_at,
        run.finished_at,
        run.error,
    )
