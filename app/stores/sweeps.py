"""SQL for sweeps: creation and reads, always scoped to the owning team."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import cache
from typing import Any, cast
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from app.db.base import utc_now
from app.db.models import Sweep, WorkflowVersion
from app.domain.assignments import plan_fixed
from app.domain.fair_share import DEFAULT_PRIORITY
from app.domain.states import CLAIMABLE, DRAINABLE, RunStatus, SweepStatus
from app.stores import active_sweeps, journal


def add_sweep(
    session: Session,
    *,
    sweep_id: UUID,
    team_id: UUID,
    workflow: str,
    request: Mapping[str, Any],
    plan: Mapping[str, Any],
    total: int,
    workflow_version_id: UUID | None = None,
    required_tags: str = "",
    priority: int = DEFAULT_PRIORITY,
    estimate: Mapping[str, Any] | None = None,
    source_sweep_id: UUID | None = None,
    status: SweepStatus = SweepStatus.PENDING,
) -> Sweep:
    """`status` paused holds its runs until it is resumed; pending ones start at once."""
    sweep = Sweep(
        id=sweep_id,
        status=status,
        priority=priority,
        estimate=None if estimate is None else dict(estimate),
        team_id=team_id,
        workflow=workflow,
        workflow_version_id=workflow_version_id,
        request=dict(request),
        plan=dict(plan),
        total=total,
        required_tags=required_tags,
        source_sweep_id=source_sweep_id,
    )
    session.add(sweep)
    # Flushed now so the runs' bulk insert, which bypasses the ORM, finds the parent row.
    session.flush()
    journal.sweep_queued(session, team_id, sweep_id, total, workflow, priority)
    if status is SweepStatus.PAUSED:
        journal.sweep_moved(session, team_id, sweep_id, [SweepStatus.PENDING], status, {})
    return sweep


def get_sweep(session: Session, sweep_id: UUID, team_id: UUID) -> Sweep | None:
    """The sweep if `team_id` owns it; another team's sweep is indistinguishable from none."""
    query = sa.select(Sweep).where(Sweep.id == sweep_id, Sweep.team_id == team_id)
    return session.scalars(query).one_or_none()


def status_row(connection: sa.Connection, sweep_id: UUID, team_id: UUID) -> sa.Row[Any] | None:
    """What a status read shows of the sweep if `team_id` owns it: the sweep's columns, its
    run counters and its pinned version's `version` and `content_hash`, in one statement and
    no ORM objects, for the API's most frequent request (run it on an autocommit
    connection: one round trip, no BEGIN or ROLLBACK around it)."""
    query = _status_query()
    return connection.execute(query, {"sweep_id": sweep_id, "team_id": team_id}).one_or_none()


@cache
def _status_query() -> sa.Select[Any]:
    counts = [getattr(Sweep, count_column(status)) for status in RunStatus]
    return (
        sa.select(
            Sweep.id,
            Sweep.workflow,
            Sweep.status,
            Sweep.total,
            Sweep.created_at,
            Sweep.plan,
            Sweep.started_at,
            Sweep.finished_at,
            Sweep.required_tags,
            Sweep.estimate,
            Sweep.source_sweep_id,
            *counts,
            WorkflowVersion.version,
            WorkflowVersion.content_hash,
        )
        .outerjoin(WorkflowVersion, WorkflowVersion.id == Sweep.workflow_version_id)
        .where(Sweep.id == sa.bindparam("sweep_id"), Sweep.team_id == sa.bindparam("team_id"))
    )


def page_sweeps(
    session: Session, team_id: UUID, offset: int, limit: int
) -> tuple[list[Sweep], int]:
    """One page of the team's sweeps, newest first, and how many the team has in all."""
    query = (
        sa.select(Sweep)
        .where(Sweep.team_id == team_id)
        .order_by(Sweep.created_at.desc(), Sweep.id.desc())
        .offset(offset)
        .limit(limit)
    )
    count = sa.select(sa.func.count()).select_from(Sweep).where(Sweep.team_id == team_id)
    return list(session.scalars(query)), session.scalar(count) or 0


def move_sweep(
    session: Session,
    sweep_id: UUID,
    from_statuses: Iterable[SweepStatus],
    to: SweepStatus,
    *,
    event_data: Mapping[str, Any] | None = None,
    **stamps: datetime,
) -> bool:
    """Compare-and-set the sweep's status; exactly one caller wins a given transition.
    Its queued runs are claimable exactly while it is running. The move's events are
    recorded when it applies (`journal.sweep_moved`), `event_data` in the first of them."""
    sources = tuple(from_statuses)
    row = session.execute(
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status.in_(sources))
        .values(status=to, **stamps)
        .returning(Sweep.team_id, *_COUNTERS)
    ).first()
    if row is None:
        return False
    active_sweeps.set_active(session, sweep_id, to in CLAIMABLE)
    journal.sweep_moved(session, row[0], sweep_id, sources, to, _counts_of(row[1:]), event_data)
    return True


def reopen_sweep(session: Session, sweep_id: UUID, from_statuses: Iterable[SweepStatus]) -> bool:
    """A sweep that had ended → running again, unstamped as finished: runs were just queued
    in it (a retry, an extension). Called after the runs moved, so `move_counts` already
    holds the sweep row's lock and no worker can move its status meanwhile. One cancelled
    before it ever started is stamped as started now: a running sweep has started."""
    row = session.execute(
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.status.in_(tuple(from_statuses)))
        .values(
            status=SweepStatus.RUNNING,
            finished_at=None,
            started_at=sa.func.coalesce(Sweep.started_at, utc_now()),
        )
        .returning(Sweep.team_id, Sweep.queued_count)
    ).first()
    if row is None:
        return False
    active_sweeps.set_active(session, sweep_id, True)
    journal.sweep_reopened(session, row[0], sweep_id, row[1])
    return True


def sweep_status(session: Session, sweep_id: UUID) -> SweepStatus | None:
    return session.scalar(sa.select(Sweep.status).where(Sweep.id == sweep_id))


def replace_plan(
    session: Session, sweep_id: UUID, was_total: int, plan: Mapping[str, Any], total: int
) -> bool:
    """The extended plan and run count, compare-and-set on the count it was extended from,
    so of two extensions read from the same plan only one applies."""
    result = session.execute(
        sa.update(Sweep)
        .where(Sweep.id == sweep_id, Sweep.total == was_total)
        .values(plan=dict(plan), total=total)
    )
    return cast(sa.CursorResult[Any], result).rowcount == 1


def start_finalizing_if_drained(session: Session, sweep_id: UUID) -> bool:
    """running | paused → finalizing once no run is queued or running, judged by the counters
    in the same UPDATE: called in the transaction that ended a run, after `move_counts` locked
    the sweep row, so exactly one ending run (or the reconciler) wins and sends the finalizer.
    When that `move_counts` left runs queued or running, the UPDATE would match nothing
    and is not sent: every run's record but the last saves a round trip."""
    left = _runs_left(session, sweep_id)
    if left is not None and left > 0:
        return False
    row = session.execute(_FINALIZE_IF_DRAINED, {"sweep_id": sweep_id}).first()
    if row is None:
        return False
    active_sweeps.set_active(session, sweep_id, False)
    journal.sweep_moved(
        session, row[0], sweep_id, DRAINABLE, SweepStatus.FINALIZING, _counts_of(row[1:])
    )
    return True


# The run counters, in RunStatus order, as a sweep's moves return them for its events.
_COUNTERS = tuple(getattr(Sweep, f"{status.value}_count") for status in RunStatus)


def _counts_of(row: Iterable[int]) -> dict[RunStatus, int]:
    return dict(zip(RunStatus, row, strict=True))


def run_counts(sweep: Sweep | sa.Row[Any]) -> dict[RunStatus, int]:
    """How many of the sweep's runs are in each status, from its counters (of the sweep or
    its `status_row`): no runs are read."""
    return {status: getattr(sweep, count_column(status)) for status in RunStatus}


def count_column(status: RunStatus) -> str:
    return f"{status.value}_count"


def move_counts(session: Session, sweep_id: UUID, deltas: Mapping[RunStatus, int]) -> UUID | None:
    """Add `deltas` to the sweep's run counters; returns the sweep's team (None when nothing
    moved), which the run transitions' events need. Only `app.stores.runs` calls it, in the
    transaction of the run transitions it counts and after them: every transaction locks run
    rows before the sweep row, so a worker and a cancellation never wait on each other."""
    moved = _moved_columns(deltas)
    if not moved:
        return None
    result = session.execute(_count_update(moved), {**count_params(deltas), "sweep_id": sweep_id})
    counts = result.one() if deltas.get(RunStatus.QUEUED, 0) else result.first()
    if counts is None:
        return None
    return counted(session, sweep_id, deltas, counts._mapping)


def _moved_columns(deltas: Mapping[RunStatus, int]) -> tuple[str, ...]:
    return tuple(sorted(count_column(status) for status, delta in deltas.items() if delta))


def count_params(deltas: Mapping[RunStatus, int]) -> dict[str, int]:
    """The parameters of `_count_update` and `counting` for `deltas`, but the sweep's id."""
    return {f"add_{count_column(status)}": delta for status, delta in deltas.items() if delta}


def counted(
    session: Session, sweep_id: UUID, deltas: Mapping[RunStatus, int], returned: sa.RowMapping
) -> UUID:
    """What follows the counters' UPDATE (`move_counts`, or a `counting` statement), from the
    row it returned; the sweep's team."""
    counts = {column: returned[column] for column in _returned_counts(_moved_columns(deltas))}
    _keep_loaded_in_step(session, sweep_id, counts)
    _note_runs_left(session, sweep_id, counts["queued_count"] + counts["running_count"])
    queued_delta = deltas.get(RunStatus.QUEUED, 0)
    if queued_delta:
        active_sweeps.follow_queued(session, sweep_id, counts["queued_count"], queued_delta > 0)
    team_id: UUID = returned["team_id"]
    return team_id


def counting(
    run_update: sa.Update,
    deltas: Mapping[RunStatus, int],
    on_moved: Callable[[sa.CTE], sa.Insert] | None = None,
) -> sa.Update:
    """One statement for a run's transition and the counters it moves (Postgres only: SQLite
    has no UPDATE in a WITH): `run_update`, which must return the run's `sweep_id`, as a
    common table expression, and the counters' UPDATE of its sweep joined to it, returning
    the run's columns and what `counted` needs. A transition that matched no run moves no
    counter and returns no row. The run's row is locked before its sweep's, as the counters'
    UPDATE has no row to change until the run's UPDATE returned one. `on_moved`: an INSERT
    of rows that belong to the moved run, made from the run's CTE (so nothing is inserted
    when no run moved), in the same statement."""
    columns = _moved_columns(deltas)
    run = run_update.cte("moved_run")
    counters = (
        sa.update(_sweeps)
        .where(_sweeps.c.id == run.c.sweep_id)
        .values(_count_changes(columns))
        .returning(
            *run.c,
            *(_sweeps.c[column] for column in _returned_counts(columns)),
            _sweeps.c.team_id,
        )
    )
    return counters if on_moved is None else counters.add_cte(on_moved(run).cte("added"))


# What the transaction's last `move_counts` left queued and running of a sweep, read from
# its UPDATE, which holds the sweep row's lock until the transaction ends: no other
# transaction can change those counters meanwhile, and in this one only `move_counts` does.
_RUNS_LEFT = "comfy_sweep_runs_left"


def _note_runs_left(session: Session, sweep_id: UUID, left: int) -> None:
    session.info[_RUNS_LEFT] = (_current_transaction(session), sweep_id, left)


def _runs_left(session: Session, sweep_id: UUID) -> int | None:
    """None unless `move_counts` moved this sweep's counters in the current transaction."""
    noted = session.info.get(_RUNS_LEFT)
    if noted is None or noted[0] is not _current_transaction(session) or noted[1] != sweep_id:
        return None
    return int(noted[2])


def _current_transaction(session: Session) -> object:
    # A savepoint rolled back may have undone the move: only the innermost one counts.
    return session.get_nested_transaction() or session.get_transaction()


_sweeps = cast(sa.Table, Sweep.__table__)
# Built once: every run's record runs it (`start_finalizing_if_drained`).
_FINALIZE_IF_DRAINED = (
    sa.update(_sweeps)
    .where(
        _sweeps.c.id == sa.bindparam("sweep_id"),
        # A paused sweep too: with no run queued, nothing is held back, so it ends as usual.
        _sweeps.c.status.in_(DRAINABLE),
        _sweeps.c.queued_count + _sweeps.c.running_count == 0,
    )
    .values(status=SweepStatus.FINALIZING)
    .returning(_sweeps.c.team_id, *(_sweeps.c[count_column(status)] for status in RunStatus))
)


def _count_changes(columns: tuple[str, ...]) -> dict[str, Any]:
    changes: dict[str, Any] = {
        column: _sweeps.c[column] + sa.bindparam(f"add_{column}", type_=sa.Integer())
        for column in columns
    }
    # updated_at stays: it dates the sweep's own changes, which the reconciler's stall
    # checks go by, and a run moving is not one.
    changes["updated_at"] = _sweeps.c.updated_at
    return changes


def _returned_counts(columns: tuple[str, ...]) -> tuple[str, ...]:
    # The queued and running counters always: `start_finalizing_if_drained` reads them.
    return tuple(dict.fromkeys((*columns, "queued_count", "running_count")))


@cache
def _count_update(columns: tuple[str, ...]) -> sa.Update:
    """The UPDATE adding a delta to each of `columns`, built once per set of columns: a
    Core statement on the table, so the ORM neither rebuilds it nor evaluates it against
    the session's objects (`_keep_loaded_in_step` does that from what it returns)."""
    return (
        sa.update(_sweeps)
        .where(_sweeps.c.id == sa.bindparam("sweep_id"))
        .values(_count_changes(columns))
        .returning(*(_sweeps.c[column] for column in _returned_counts(columns)), _sweeps.c.team_id)
    )


def _keep_loaded_in_step(session: Session, sweep_id: UUID, counts: Mapping[str, int]) -> None:
    """Set the new counts on the sweep's object if the session has it loaded, as an ORM
    UPDATE would, so a caller reading it after a run moved sees the move."""
    loaded = session.identity_map.get(_SWEEP_MAPPER.identity_key_from_primary_key((sweep_id,)))
    if loaded is not None:
        for column, count in counts.items():
            set_committed_value(loaded, column, count)


_SWEEP_MAPPER = sa.inspect(Sweep)


def find_sweep(session: Session, sweep_id: UUID) -> Sweep | None:
    """Any team's sweep, for workers (never for the API, which scopes by team)."""
    return session.get(Sweep, sweep_id)


def fixed_values(session: Session, sweep_id: UUID) -> Mapping[str, Any]:
    """The values every run of the sweep shares (its plan's "fixed"); {} for no sweep. Only
    that member is sent: a sampled sweep's plan lists every sample point."""
    fixed = session.scalar(sa.select(Sweep.plan["fixed"]).where(Sweep.id == sweep_id))
    return plan_fixed({"fixed": fixed})


def sweeps_in(session: Session, status: SweepStatus, updated_before: datetime) -> list[Sweep]:
    query = sa.select(Sweep).where(Sweep.status == status, Sweep.updated_at < updated_before)
    return list(session.scalars(query.limit(100)))


def drained(session: Session, status: SweepStatus) -> list[UUID]:
    """Sweeps in `status` with no run queued or running: each is owed finalizing."""
    query = sa.select(Sweep.id).where(
        Sweep.status == status, Sweep.queued_count + Sweep.running_count == 0
    )
    return list(session.scalars(query.limit(100)))


def mark_hinted(session: Session, sweep_id: UUID, at: datetime) -> None:
    session.execute(sa.update(Sweep).where(Sweep.id == sweep_id).values(hinted_at=at))
