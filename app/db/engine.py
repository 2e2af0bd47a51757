"""Builds the engine and session factory for a database URL, with per-backend connection setup."""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker


@dataclass(frozen=True)
class PoolLimits:
    """A pool sized to the concurrency its process runs, waited on only briefly."""

    size: int
    timeout_s: float


def make_engine(database_url: str, limits: PoolLimits | None = None) -> Engine:
    url = sa.make_url(database_url)
    if url.get_backend_name() == "sqlite":
        return _make_sqlite_engine(url)
    # pre_ping: a worker idle for hours must not fail its first query on a dropped connection.
    if limits is None:
        return sa.create_engine(url, pool_pre_ping=True)
    # No overflow: the size is the concurrency, so a wait means something holds connections
    # it should not, and a short timeout turns that into an answer instead of a pile-up.
    # connect_timeout: a database host that drops packets fails as fast as one that refuses.
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=limits.size,
        max_overflow=0,
        pool_timeout=limits.timeout_s,
        connect_args={"connect_timeout": max(1, ceil(limits.timeout_s))},
    )


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
