"""Events a worker records while it follows a prompt (`run.progress`), each in a short
transaction of its own, and only while its attempt still holds the run.

The run's row is read FOR SHARE in that transaction: a cancellation or the run's own end
(which update the row) waits for it to commit, or commits first and is seen here, so such an
event is never recorded after the `run.cancelled`, `run.succeeded` or `sweep.finished` that
ended the attempt.
"""

from __future__ import annotations

from typing import cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Run, Sweep
from app.domain.states import RunStatus
from app.stores import journal

_runs = cast(sa.Table, Run.__table__)
_sweeps = cast(sa.Table, Sweep.__table__)
# The held run's team, the run's row share-locked: one primary key lookup, built once.
_HELD_TEAM = (
    sa.select(_sweeps.c.team_id)
    .select_from(_runs)
    .join(_sweeps, _sweeps.c.id == _runs.c.sweep_id)
    .where(
        _runs.c.id == sa.bindparam("run_id"),
        _runs.c.status == RunStatus.RUNNING,
        _runs.c.attempts == sa.bindparam("attempt"),
    )
    .with_for_update(read=True, of=_runs)
)


def held_team(session: Session, run_id: UUID, attempt: int) -> UUID | None:
    """The run's team while `attempt` still runs it, its row locked until the commit."""
    return session.scalar(_HELD_TEAM, {"run_id": run_id, "attempt": attempt})


def record_progress(
    session: Session,
    run_id: UUID,
    attempt: int,
    sweep_id: UUID,
    index: int,
    *,
    node: str,
    value: int,
    max_: int,
) -> bool:
    """Record a sampler's progress; False (nothing recorded) if the attempt ended."""
    team_id = held_team(session, run_id, attempt)
    if team_id is None:
        return False
    journal.run_progress(session, team_id, sweep_id, index, node, value, max_)
    return True
