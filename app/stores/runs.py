"""SQL for runs: the bulk insert of a sweep's expansion, paged reads, and every change of a
run's status, each of which moves the sweep's per-status counters in the same transaction
(`app.stores.sweeps.move_counts`); nothing else may write `runs.status`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import PurePosixPath
from typing import Any, cast
from uuid import UUID, uuid4

import psycopg
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Instance, Run, Sweep
from app.domain.assignments import full_assignment, plan_fixed
from app.domain.states import CLAIMABLE, RunStatus
from app.stores import attempts, journal, run_copy
from app.stores.attempts import PastAttempt
from app.stores.instance_streaks import RESET_STREAK
from app.stores.outputs import NewOutput, add_outputs, inserted_for, output_rows
from app.stores.sweeps import count_params, counted, counting, move_counts


@dataclass(frozen=True, slots=True)
class NewRun:
    index: int
    own_values: Mapping[str, Any]  # what the run varies; the sweep's plan holds the rest
    dispatch_order: int = 0
    model_key: str = ""


# Status and attempts come from the columns' server defaults.
_COPY_RUNS = f"COPY runs ({', '.join(run_copy.COLUMNS)}) FROM STDIN"


def add_runs(session: Session, sweep_id: UUID, runs: Iterable[NewRun]) -> int:
    """Insert one queued run per NewRun, each with a fresh id; returns how many.

    This is the submission hot path. On Postgres with psycopg it is a text COPY streamed in
    pieces (`run_copy`), 3-4 times faster than SQLAlchemy's batched multi-row INSERT, with
    ascending uuid7 ids. For 10,000 lean runs on a 2-core VM the server spends ~100 ms of
    CPU storing them (the heap, the primary key and two indexes, the foreign key; the JSON
    text is only validated), the API ~35 ms encoding them. Elsewhere (SQLite) it is an
    executemany INSERT with uuid4 ids.
    """
    session.flush()  # the sweep row must exist before rows that reference it
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        count = _copy_runs(connection, sweep_id, runs)
    else:
        count = _insert_runs(session, sweep_id, runs)
    move_counts(session, sweep_id, {RunStatus.QUEUED: count})
    return count


def _insert_runs(session: Session, sweep_id: UUID, runs: Iterable[NewRun]) -> int:
    rows = [
        {
            "id": uuid4(),
            "sweep_id": sweep_id,
            "index": run.index,
            "own_values": dict(run.own_values),
            "dispatch_order": run.dispatch_order,
            "model_key": run.model_key,
        }
        for run in runs
    ]
    if rows:
        session.execute(sa.insert(Run), rows)
    return len(rows)


def page_runs(
    session: Session, sweep_id: UUID, offset: int, limit: int, status: RunStatus | None
) -> tuple[list[Run], int]:
    """One page of the sweep's runs in index order, and how many match in all."""
    match = [Run.sweep_id == sweep_id]
    if status is not None:
        match.append(Run.status == status)
    query = sa.select(Run).where(*match).order_by(Run.index).offset(offset).limit(limit)
    count = sa.select(sa.func.count()).select_from(Run).where(*match)
    return list(session.scalars(query)), session.scalar(count) or 0


def get_run(session: Session, sweep_id: UUID, index: int) -> Run | None:
    query = sa.select(Run).where(Run.sweep_id == sweep_id, Run.index == index)
    return session.scalars(query).one_or_none()


def count_runs_by_status(session: Session, sweep_id: UUID) -> dict[RunStatus, int]:
    """How many of the sweep's runs are in each status, by counting them; every status is
    present, 0 if none. Reads go by the sweep's counters (`sweeps.run_counts`); this recount
    is what they are checked against."""
    query = (
        sa.select(Run.status, sa.func.count()).where(Run.sweep_id == sweep_id).group_by(Run.status)
    )
    counts = dict.fromkeys(RunStatus, 0)
    for status, count in session.execute(query):
        counts[status] = count
    return counts


def _copy_runs(connection: sa.Connection, sweep_id: UUID, runs: Iterable[NewRun]) -> int:
    # The DBAPI connection under the session's own transaction, so the COPY commits or
    # rolls back with everything else the caller did.
    driver = cast(psycopg.Connection[Any], connection.connection.driver_connection)
    try:
        return _write_copy(driver, sweep_id, runs)
    except psycopg.Error as error:
        # Re-raised as SQLAlchemy's classes (IntegrityError, ...), as the INSERT path raises,
        # so callers catch one family of errors whatever the backend.
        wrapped = sa.exc.DBAPIError.instance(
            _COPY_RUNS, None, error, psycopg.Error, dialect=connection.dialect
        )
        raise cast(Exception, wrapped) from error


def _write_copy(driver: psycopg.Connection[Any], sweep_id: UUID, runs: Iterable[NewRun]) -> int:
    # queued_at set here: the server default now() is the transaction start, before the
    # sweep was made.
    count = 0
    with driver.cursor() as cursor, cursor.copy(_COPY_RUNS) as copy:
        for chunk, rows in run_copy.copy_chunks(sweep_id, runs, utc_now()):
            copy.write(chunk)
            count += rows
    return count


# --- execution: every transition is a compare-and-set that reports whether it applied ---


FAILED_ON = "instance"  # key of a requeued run's error: the instance its attempt failed on


@dataclass(frozen=True, slots=True)
class Claim:
    """What a worker needs of a run it holds, detached from the session."""

    run_id: UUID
    sweep_id: UUID
    index: int
    assignment: Mapping[str, Any]  # the full one: the sweep's fixed values and the run's own
    attempt: int
    instance: str
    model_key: str
    # For the metrics of queue wait and run duration: read in the claim's own statement.
    queued_at: datetime | None = None
    started_at: datetime | None = None


# A claim's hot path runs Core statements on the tables, each built once here with bind
# parameters: no ORM entity is loaded or kept in step, and SQLAlchemy's compiled cache hits
# without building the statement again. The sweep's fixed values come in the same
# statement, as a correlated subquery, not a round trip of their own.
_runs = cast(sa.Table, Run.__table__)
_sweeps = cast(sa.Table, Sweep.__table__)
_instances = cast(sa.Table, Instance.__table__)
_FIXED = (
    sa.select(_sweeps.c.plan["fixed"])
    .where(_sweeps.c.id == _runs.c.sweep_id)
    .correlate(_runs)
    .scalar_subquery()
    .label("fixed")
)
_CLAIM_COLUMNS = (
    _runs.c.id,
    _runs.c.sweep_id,
    _runs.c.index,
    _runs.c.own_values,
    _runs.c.attempts,
    _runs.c.instance,
    _runs.c.model_key,
    _FIXED,
    _runs.c.queued_at,
    _runs.c.started_at,
)


def _claim_of(row: Sequence[Any]) -> Claim:
    """The Claim of a row of _CLAIM_COLUMNS."""
    run_id, sweep_id, index, own_values, attempts, instance, model_key, fixed, *times = row
    return Claim(
        run_id,
        sweep_id,
        index,
        full_assignment(plan_fixed({"fixed": fixed}), own_values),
        attempts,
        instance or "",
        model_key,
        *times,
    )


# A run starts only while its sweep may start runs. The sweep's row is locked and its status
# read under the lock in the run's own statement, once the run is found still queued: a pause
# or cancellation committed since the claim chose the run is seen, and the run stays queued;
# one that comes later waits for the claim's commit. FOR NO KEY UPDATE, as the counters'
# UPDATE that follows locks it (`counting`), so no lock is upgraded.
_SWEEP_CLAIMABLE = (
    sa.select(_sweeps.c.id)
    .where(_sweeps.c.id == _runs.c.sweep_id, _sweeps.c.status.in_(CLAIMABLE))
    .with_for_update(key_share=True)
    .exists()
)
# Bind parameters of UPDATEs may not be named as the columns they set.
_START = (
    sa.update(_runs)
    .where(
        _runs.c.id == sa.bindparam("run_id"),
        _runs.c.status == RunStatus.QUEUED,
        _SWEEP_CLAIMABLE,
    )
    .values(
        status=RunStatus.RUNNING,
        attempts=_runs.c.attempts + 1,
        instance=sa.bindparam("to_instance"),
        prompt_id=sa.bindparam("as_prompt"),
        claimed_by=sa.bindparam("task_id"),
        lease_expires_at=sa.bindparam("lease_until"),
        started_at=sa.bindparam("now"),
        finished_at=None,
        prompt_done_at=None,
    )
    .returning(*_CLAIM_COLUMNS)
)


_START_DELTAS = {RunStatus.QUEUED: -1, RunStatus.RUNNING: 1}
# On Postgres the counters move in the run's own statement (`sweeps.counting`).
_START_COUNTED = counting(_START, _START_DELTAS)


def start_run(
    session: Session, run_id: UUID, instance: str, task_id: str, lease_until: datetime
) -> Claim | None:
    """queued → running on `instance`, one more attempt; None if someone else got there, or
    its sweep may not start runs now (paused or cancelled since the run was chosen)."""
    params = {
        "run_id": run_id,
        "to_instance": instance,
        "as_prompt": str(run_id),
        "task_id": task_id,
        "lease_until": lease_until,
        "now": utc_now(),
    }
    team_id: UUID | None
    if _counts_in_one_statement(session):
        params.update(count_params(_START_DELTAS))
        row = session.execute(_START_COUNTED, params).first()
        if row is None:
            return None
        team_id = counted(session, row.sweep_id, _START_DELTAS, row._mapping)
    else:
        row = session.execute(_START, params).first()
        if row is None:
            return None
        team_id = move_counts(session, row.sweep_id, _START_DELTAS)
    claim = _claim_of(row[: len(_CLAIM_COLUMNS)])
    if team_id is not None:
        journal.run_started(
            session,
            team_id,
            claim.sweep_id,
            claim.index,
            instance=instance,
            prompt_id=str(run_id),
            attempt=claim.attempt,
        )
    return claim


def _counts_in_one_statement(session: Session) -> bool:
    """Whether a run's transition and its sweep's counters go in one statement (`counting`):
    Postgres runs an UPDATE inside a WITH, SQLite does not."""
    return session.get_bind().dialect.name == "postgresql"


_CLAIMED_BY = sa.select(*_CLAIM_COLUMNS).where(
    _runs.c.claimed_by == sa.bindparam("task_id"), _runs.c.status == RunStatus.RUNNING
)


def claimed_by(session: Session, task_id: str) -> Claim | None:
    """The run this task id holds, if it is still running: a redelivered message resumes it."""
    row = session.execute(_CLAIMED_BY, {"task_id": task_id}).first()
    return None if row is None else _claim_of(row)


_TAKE_OVER = (
    sa.update(_runs)
    .where(
        _runs.c.id == sa.bindparam("run_id"),
        _runs.c.status == RunStatus.RUNNING,
        _runs.c.lease_expires_at < sa.bindparam("now"),
    )
    .values(claimed_by=sa.bindparam("task_id"), lease_expires_at=sa.bindparam("lease_until"))
    .returning(*_CLAIM_COLUMNS)
)


def take_over(
    session: Session, run_id: UUID, task_id: str, now: datetime, lease_until: datetime
) -> Claim | None:
    """Take a running run whose lease lapsed (its worker died); re-checked in the UPDATE."""
    params = {"run_id": run_id, "now": now, "task_id": task_id, "lease_until": lease_until}
    row = session.execute(_TAKE_OVER, params).first()
    return None if row is None else _claim_of(row)


# The held run's updates: a compare-and-set on (id, running, attempt), each built once.
_HELD = (
    _runs.c.id == sa.bindparam("run_id"),
    _runs.c.status == RunStatus.RUNNING,
    _runs.c.attempts == sa.bindparam("attempt"),
)
_BY_TASK = _runs.c.claimed_by == sa.bindparam("task_id")
_RENEW = sa.update(_runs).where(*_HELD, _BY_TASK).values(lease_expires_at=sa.bindparam("until"))
_HAND_BACK = (
    sa.update(_runs)
    .where(*_HELD, _BY_TASK)
    .values(lease_expires_at=sa.bindparam("now"), claimed_by=None)
)
_FINISH = (
    sa.update(_runs)
    .where(*_HELD)
    .values(
        status=sa.bindparam("to_status"),
        error=sa.bindparam("report"),
        finished_at=sa.bindparam("now"),
        lease_expires_at=None,
        claimed_by=None,
    )
)
_REQUEUE = (
    sa.update(_runs)
    .where(*_HELD)
    .values(
        status=RunStatus.QUEUED,
        error=sa.bindparam("report"),
        instance=None,
        prompt_done_at=None,
        claimed_by=None,
        lease_expires_at=None,
    )
)


def _held(claim: Claim, **params: Any) -> dict[str, Any]:
    return {"run_id": claim.run_id, "attempt": claim.attempt, **params}


def renew_lease(session: Session, claim: Claim, task_id: str, lease_until: datetime) -> bool:
    """Extend our lease; False when the run was cancelled, finished or taken over."""
    result = session.execute(_RENEW, _held(claim, task_id=task_id, until=lease_until))
    return _rows(result) == 1


def hand_back(session: Session, claim: Claim, task_id: str, now: datetime) -> bool:
    """Give up our claim with the run still running: its lease lapses now, so the next
    `take_over` (a resume message, or the reconciler's next pass) gets it at once."""
    result = session.execute(_HAND_BACK, _held(claim, task_id=task_id, now=now))
    return _rows(result) == 1


def finish_run(
    session: Session,
    claim: Claim,
    status: RunStatus,
    error: Mapping[str, Any] | None = None,
    outputs: Sequence[str] = (),
    cached: Sequence[str] = (),
) -> bool:
    """running → succeeded | failed for this attempt; False for a stale or duplicate report.
    `outputs`: the file names a success wrote, `cached`: the nodes ComfyUI took from its
    cache, for the events."""
    report = None if error is None else dict(error)
    params = _held(claim, to_status=status, report=report, now=utc_now())
    if _counts_in_one_statement(session):
        row = session.execute(_finish_counted(status), {**params, **_ended(status)}).first()
        team_id = (
            None if row is None else counted(session, claim.sweep_id, _ends(status), row._mapping)
        )
    else:
        team_id = _counted(session, claim, session.execute(_FINISH, params), status)
    if team_id is None:
        return False
    _journal_ended(session, team_id, claim, status, report, outputs, cached)
    return True


def _journal_ended(
    session: Session,
    team_id: UUID,
    claim: Claim,
    status: RunStatus,
    report: Mapping[str, Any] | None,
    outputs: Sequence[str],
    cached: Sequence[str],
) -> None:
    if cached:
        journal.run_cached(session, team_id, claim.sweep_id, claim.index, cached)
    if status is RunStatus.SUCCEEDED:
        journal.run_succeeded(session, team_id, claim.sweep_id, claim.index, outputs)
    else:
        journal.run_failed(session, team_id, claim.sweep_id, claim.index, report)


def record_succeeded(
    session: Session,
    claim: Claim,
    files: Sequence[NewOutput] = (),
    cached: Sequence[str] = (),
) -> bool:
    """A success's whole record: the instance's transport failure streak ended
    (`RESET_STREAK`, whether or not the report is stale, as a success there it
    was), then running → succeeded for this attempt with its outputs (`add_outputs`);
    False for a stale or duplicate report, which adds no output. On Postgres one statement
    (`_SUCCEEDED_COUNTED`), elsewhere one per step."""
    if not _counts_in_one_statement(session):
        session.execute(RESET_STREAK, {"at_url": claim.instance})
        names = _names(files)
        recorded = finish_run(session, claim, RunStatus.SUCCEEDED, outputs=names, cached=cached)
        if recorded:
            add_outputs(session, claim.run_id, files)
        return recorded
    params = {
        **_held(claim, to_status=RunStatus.SUCCEEDED, report=None, now=utc_now()),
        **_ended(RunStatus.SUCCEEDED),
        **output_rows(files),
        "at_url": claim.instance,
    }
    row = session.execute(_SUCCEEDED_COUNTED, params).first()
    if row is None:
        return False
    deltas = _ends(RunStatus.SUCCEEDED)
    team_id = counted(session, claim.sweep_id, deltas, row._mapping)
    _journal_ended(session, team_id, claim, RunStatus.SUCCEEDED, None, _names(files), cached)
    return True


def _names(files: Sequence[NewOutput]) -> list[str]:
    return [PurePosixPath(file.path).name for file in files]


def _succeeded_counted() -> sa.Update:
    """`_FINISH` to succeeded with its counters (`counting`), its outputs inserted from the
    moved run, and the instance's streak reset (`RESET_STREAK`) before all of them. Before:
    a recorder locks the instance row (when it has a streak) before the run's and the
    sweep's, the order claimers lock them in (`app.stores.claims`), or the two deadlock.
    Postgres runs the statements of a WITH in no documented order, so the order is made a
    dependency: the run's UPDATE filters on a count of the rows the reset returned, which it
    cannot know before the reset has run (and locked its row)."""
    streak = RESET_STREAK.returning(_instances.c.url).cte("ended_streak")
    reset_first = sa.select(sa.func.count()).select_from(streak).scalar_subquery() >= 0
    moved = _FINISH.where(reset_first).returning(_runs.c.sweep_id, _runs.c.id)
    return counting(moved, _ends(RunStatus.SUCCEEDED), inserted_for)


def _ends(status: RunStatus) -> dict[RunStatus, int]:
    """The counters' deltas of a held run's move from running to `status`."""
    return {RunStatus.RUNNING: -1, status: 1}


def _ended(status: RunStatus) -> dict[str, int]:
    return count_params(_ends(status))


@cache
def _finish_counted(status: RunStatus) -> sa.Update:
    return counting(_FINISH.returning(_runs.c.sweep_id), _ends(status))


_SUCCEEDED_COUNTED = _succeeded_counted()
_REQUEUE_RETURNING = _REQUEUE.returning(_runs.c.sweep_id, _runs.c.started_at)
_REQUEUE_COUNTED = counting(_REQUEUE_RETURNING, _ends(RunStatus.QUEUED))


def requeue_run(
    session: Session, claim: Claim, error: Mapping[str, Any], cached: Sequence[str] = ()
) -> bool:
    """running → queued, to be tried again; the error names the instance it failed on, so
    that another one takes it if there is another (`claims.next_run`'s `avoid`). The attempt
    it ends is kept in `run_attempts`, as the next one overwrites the run's own columns."""
    report = {**error, FAILED_ON: claim.instance}
    params = _held(claim, report=report)
    deltas = _ends(RunStatus.QUEUED)
    team_id: UUID | None
    if _counts_in_one_statement(session):
        params.update(count_params(deltas))
        row = session.execute(_REQUEUE_COUNTED, params).first()
        team_id = None if row is None else counted(session, claim.sweep_id, deltas, row._mapping)
    else:
        # Its started_at is the attempt's: the requeue leaves it as it was.
        row = session.execute(_REQUEUE_RETURNING, params).first()
        team_id = None if row is None else move_counts(session, claim.sweep_id, deltas)
    if row is None or team_id is None:
        return False
    if cached:
        journal.run_cached(session, team_id, claim.sweep_id, claim.index, cached)
    journal.runs_queued(session, team_id, claim.sweep_id, [claim.index], "requeued")
    attempt = PastAttempt(
        claim.run_id,
        claim.attempt,
        RunStatus.QUEUED.value,
        claim.instance,
        row.started_at,
        utc_now(),
        report,
    )
    attempts.add_attempts(session, [attempt])
    return True


def _counted(session: Session, claim: Claim, result: sa.Result[Any], to: RunStatus) -> UUID | None:
    """Moves the counters if the compare-and-set of the held run (running → `to`) applied;
    the sweep's team if it did, None if it did not."""
    if _rows(result) != 1:
        return None
    return move_counts(session, claim.sweep_id, _ends(to))


def _rows(result: sa.Result[Any]) -> int:
    """Rows an UPDATE matched: the compare-and-set's verdict."""
    return cast(sa.CursorResult[Any], result).rowcount


def run_status(session: Session, run_id: UUID) -> RunStatus | None:
    return session.scalar(sa.select(Run.status).where(Run.id == run_id))


def holding_prompt() -> tuple[sa.ColumnElement[bool], ...]:
    """Runs holding a slot of their instance: from their claim until their outcome is
    recorded, as the task that claimed one claims the next only then (`workers.slot_keeping`)."""
    return (_runs.c.status == RunStatus.RUNNING, _runs.c.instance.is_not(None))


_UNFINISHED = (RunStatus.QUEUED, RunStatus.RUNNING)


@dataclass(frozen=True, slots=True)
class CancelledRuns:
    queued: int  # runs that will never start
    running: int  # runs whose prompts are withdrawn


def cancel_unfinished(session: Session, sweep_id: UUID) -> CancelledRuns:
    """Cancel every queued and running run of the sweep at once. Each running one records
    `run.cancelled`; the queued ones are counted in the sweep's `sweep.cancelled`."""
    unfinished = (Run.sweep_id == sweep_id, Run.status.in_(_UNFINISHED))
    # Locked first, in id order, to learn each run's status before the UPDATE (RETURNING
    # only shows new values) and so two cancellations lock rows in the same order. No run
    # can enter these statuses meanwhile: only a held run goes back to queued.
    locked = sa.select(Run.index, Run.status).where(*unfinished).order_by(Run.id).with_for_update()
    running = []
    before: Counter[RunStatus] = Counter()
    for index, status in session.execute(locked):
        before[status] += 1
        if status is RunStatus.RUNNING:
            running.append(index)
    result = session.execute(
        sa.update(Run)
        .where(*unfinished)
        .values(status=RunStatus.CANCELLED, finished_at=utc_now(), lease_expires_at=None)
    )
    cancelled = _rows(result)
    deltas = {status: -count for status, count in before.items()}
    team_id = move_counts(session, sweep_id, {**deltas, RunStatus.CANCELLED: cancelled})
    if team_id is not None:
        journal.runs_cancelled(session, team_id, sweep_id, running)
    return CancelledRuns(before[RunStatus.QUEUED], before[RunStatus.RUNNING])


def submitted_prompts(session: Session, sweep_id: UUID) -> list[tuple[str, str]]:
    """(instance, prompt_id) of every run of the sweep that has been sent to an instance."""
    query = sa.select(Run.instance, Run.prompt_id).where(
        Run.sweep_id == sweep_id, Run.instance.is_not(None), Run.prompt_id.is_not(None)
    )
    return [(i, p) for i, p in session.execute(query) if i and p]


def lapsed_leases(session: Session, now: datetime, limit: int = 100) -> list[UUID]:
    query = (
        sa.select(Run.id)
        .where(Run.status == RunStatus.RUNNING, Run.lease_expires_at < now)
        .limit(limit)
    )
    return list(session.scalars(query))


def last_activity(session: Session, sweep_id: UUID) -> datetime | None:
    """When a run of the sweep last started or ended."""
    query = sa.select(sa.func.max(sa.func.coalesce(Run.finished_at, Run.started_at))).where(
        Run.sweep_id == sweep_id
    )
    return session.scalar(query)
