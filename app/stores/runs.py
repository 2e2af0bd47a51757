"""SQL for runs: the bulk insert of a sweep's expansion, paged reads and counts by status."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, cast
from uuid import UUID, uuid4

import psycopg
import sqlalchemy as sa
from psycopg.types.json import Jsonb
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Run
from app.domain.states import RunStatus

RunRow = tuple[int, Mapping[str, Any]]  # (index, assignment)

# Status and attempts come from the columns' server defaults.
_COPY_RUNS = 'COPY runs (id, sweep_id, "index", assignment, queued_at) FROM STDIN (FORMAT BINARY)'
_COPY_TYPES = ["uuid", "uuid", "int4", "jsonb", "timestamptz"]
CopyRow = tuple[UUID, UUID, int, Jsonb, datetime]


def add_runs(session: Session, sweep_id: UUID, runs: Iterable[RunRow]) -> int:
    """Insert one queued run per (index, assignment), each with a fresh uuid4; returns how many.

    This is the submission hot path. On Postgres with psycopg it is a binary COPY, 3-4 times
    faster than SQLAlchemy's batched multi-row INSERT (10,000 runs: ~190 ms against ~600-870
    ms on a 2-core VM, most of it the server's index and foreign-key upkeep). Elsewhere
    (SQLite) it is an executemany INSERT.
    """
    session.flush()  # the sweep row must exist before rows that reference it
    connection = session.connection()
    if connection.dialect.name == "postgresql" and connection.dialect.driver == "psycopg":
        return _copy_runs(connection, sweep_id, runs)
    rows = [
        {"id": uuid4(), "sweep_id": sweep_id, "index": index, "assignment": dict(assignment)}
        for index, assignment in runs
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


def count_runs_by_status(session: Session, sweep_id: UUID) -> dict[RunStatus, int]:
    """How many of the sweep's runs are in each status; every status is present, 0 if none."""
    query = (
        sa.select(Run.status, sa.func.count()).where(Run.sweep_id == sweep_id).group_by(Run.status)
    )
    counts = dict.fromkeys(RunStatus, 0)
    for status, count in session.execute(query):
        counts[status] = count
    return counts


def _copy_runs(connection: sa.Connection, sweep_id: UUID, runs: Iterable[RunRow]) -> int:
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


def _write_copy(driver: psycopg.Connection[Any], sweep_id: UUID, runs: Iterable[RunRow]) -> int:
    count = 0
    with driver.cursor() as cursor, cursor.copy(_COPY_RUNS) as copy:
        copy.set_types(_COPY_TYPES)
        for row in _copy_rows(sweep_id, runs):
            copy.write_row(row)
            count += 1
    return count


def _copy_rows(sweep_id: UUID, runs: Iterable[RunRow]) -> Iterator[CopyRow]:
    # Set here: the server default now() is the transaction start, before the sweep was made.
    queued_at = utc_now()
    for index, assignment in runs:
        yield uuid4(), sweep_id, index, Jsonb(dict(assignment)), queued_at
