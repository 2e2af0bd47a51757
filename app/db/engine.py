"""Builds the engine and session factory for a database URL, with per-backend connection setup."""

from __future__ import annotations

import time
from dataclasses import dataclass
from math import ceil
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection


@dataclass(frozen=True)
class PoolLimits:
    """A pool sized to the concurrency its process runs, waited on only briefly."""

    size: int
    timeout_s: float


def make_engine(database_url: str, limits: PoolLimits | None = None) -> Engine:
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _make_sqlite_engine(url)
    if limits is None:
        return _with_idle_ping(sa.create_engine(url))
    # No overflow: the size is the concurrency, so a wait means something holds connections
    # it should not, and a short timeout turns that into an answer instead of a pile-up.
    # connect_timeout: a database host that drops packets fails as fast as one that refuses.
    engine = sa.create_engine(
        url,
        pool_size=limits.size,
        max_overflow=0,
        pool_timeout=limits.timeout_s,
        connect_args={"connect_timeout": max(1, ceil(limits.timeout_s))},
    )
    return _with_idle_ping(engine)


# Pools ping only connections that sat idle this long, so a worker idle for hours does not
# fail its first query on a connection the database dropped meanwhile. pool_pre_ping's round
# trip on every checkout was one of the five a status read made, and one of a worker's ~15
# statements per run; a connection back from a transaction milliseconds ago is as alive as a
# ping would show. One that a restarted database dropped meanwhile fails its query and
# SQLAlchemy discards the pool's connections: the API answers that request 503, a worker's
# task fails, and its run comes back as any failed task's does (the reconciler's re-sent
# hints, the lapsed lease's takeover).
IDLE_PING_S = 10.0
_CHECKED_IN_AT = "comfy_sweep_checked_in_at"


def _with_idle_ping(engine: Engine) -> Engine:
    sa.event.listen(engine, "connect", _note_checkin)  # a new connection needs no ping
    sa.event.listen(engine, "checkin", _note_checkin)
    sa.event.listen(engine, "checkout", _ping_if_idle)
    return engine


def _note_checkin(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(
    dbapi_connection: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
) -> None:
    checked_in = record.info.get(_CHECKED_IN_AT)
    if checked_in is not None and time.monotonic() - checked_in < IDLE_PING_S:
        return
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()  # the ping's own transaction; the checkout starts clean
    except Exception as error:
        # The pool discards this connection and checks out another (a fresh one if need be).
        raise sa.exc.DisconnectionError(str(error)) from error


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # expire_on_commit=False: routes and tasks read attributes after the commit that wrote them.
    return sessionmaker(bind=engine, expire_on_commit=False)


def _make_sqlite_engine(url: sa.URL) -> Engine:
    # The pool hands a connection to whichever thread asks (FastAPI runs sync routes in threads).
    # timeout: how long a writer waits for another process's transaction before giving up.
    connect_args = {"check_same_thread": False, "timeout": 30}
    engine = sa.create_engine(url, connect_args=connect_args)
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take BEGIN away from the sqlite3 driver, which skips it before SELECT and SAVEPOINT;
    # _on_sqlite_begin emits it instead, so transactions and savepoints behave as on Postgres.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # off by default in SQLite
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.close()


def _on_sqlite_begin(connection: Connection) -> None:
    # IMMEDIATE takes the write lock up front. A deferred transaction that reads and then
    # writes (every compare-and-set claim does) fails at once with "database is locked"
    # when another process wrote meanwhile, instead of waiting its turn. WAL readers still
    # read without waiting; only writers queue, which suits the one-machine `make run`.
    connection.exec_driver_sql("BEGIN IMMEDIATE")
