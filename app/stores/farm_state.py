"""SQL for what `/metrics` reads at scrape time: sweeps and their runs by status, queue
depth per team and priority, and how many instances answer.

Every statement reads the sweeps' per-status counters, `active_sweeps` or `instances`,
never the runs table, so a scrape costs the same with ten runs or ten million
(tests/db/test_farm_state_plans.py EXPLAINs each). The prompts an instance holds come from
`app.stores.instances.pool_with_prompts`, a partial index as small as the work in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import ActiveSweep, Instance, Sweep, Team
from app.domain.states import RunStatus

_sweeps = cast(sa.Table, Sweep.__table__)
_active = cast(sa.Table, ActiveSweep.__table__)
_teams = cast(sa.Table, Team.__table__)
_instances = cast(sa.Table, Instance.__table__)

_COUNTERS = {
    RunStatus.QUEUED: _sweeps.c.queued_count,
    RunStatus.RUNNING: _sweeps.c.running_count,
    RunStatus.SUCCEEDED: _sweeps.c.succeeded_count,
    RunStatus.FAILED: _sweeps.c.failed_count,
    RunStatus.CANCELLED: _sweeps.c.cancelled_count,
}


@dataclass(frozen=True, slots=True)
class SweepTally:
    """Sweeps in one status, and how many of their runs are in each run status."""

    status: str
    sweeps: int
    runs: dict[RunStatus, int]


SWEEP_TALLY = sa.select(
    _sweeps.c.status,
    sa.func.count(),
    *(sa.func.coalesce(sa.func.sum(column), 0) for column in _COUNTERS.values()),
).group_by(_sweeps.c.status)


def sweep_tallies(session: Session) -> list[SweepTally]:
    """One row per sweep status in use: one pass over `sweeps`, none over runs."""
    return [
        SweepTally(str(row[0]), int(row[1]), dict(zip(_COUNTERS, map(int, row[2:]), strict=True)))
        for row in session.execute(SWEEP_TALLY)
    ]


@dataclass(frozen=True, slots=True)
class QueueDepth:
    team: str
    priority: int
    queued: int


# Claims take only from active rows (started, not paused or stopped): that is the queue.
QUEUE_DEPTHS = (
    sa.select(_teams.c.name, _active.c.priority, sa.func.sum(_sweeps.c.queued_count))
    .select_from(_active)
    .join(_sweeps, _sweeps.c.id == _active.c.sweep_id)
    .join(_teams, _teams.c.id == _active.c.team_id)
    .where(_active.c.active.is_(True))
    .group_by(_teams.c.name, _active.c.priority)
)


def queue_depths(session: Session) -> list[QueueDepth]:
    """Queued runs claims may take now, per team and priority (one row per sweep with
    queued runs is read, joined to its sweep's counter)."""
    return [
        QueueDepth(name, priority, int(queued))
        for name, priority, queued in session.execute(QUEUE_DEPTHS)
    ]


HEALTHY_CHECKED = sa.select(sa.func.count()).where(
    _instances.c.url.in_(sa.bindparam("urls", expanding=True)),
    _instances.c.healthy.is_(True),
    _instances.c.checked_at >= sa.bindparam("since"),
)


def healthy_instances(session: Session, urls: Sequence[str], since: datetime) -> int:
    """Configured instances the reconciler found answering at a check since `since`."""
    if not urls:
        return 0
    return int(session.scalar(HEALTHY_CHECKED, {"urls": list(urls), "since": since}) or 0)
