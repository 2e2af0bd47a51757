"""The API's pool and a worker's ping a connection only after it sat idle: one back from a
request or a task moments ago goes straight out, and one that idled while the database
dropped it is replaced before any query sees it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from app.db import engine as engine_module
from app.db.engine import PoolLimits, make_engine


@pytest.fixture(params=["api", "worker"])
def pool_engine(database_url: str, request: pytest.FixtureRequest) -> Iterator[Engine]:
    # The API sizes its pool; a worker process takes SQLAlchemy's default one.
    limits = PoolLimits(size=1, timeout_s=2.0) if request.param == "api" else None
    engine = make_engine(database_url, limits)
    yield engine
    engine.dispose()


def backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def terminate(database_url: str, pid: int) -> None:
    admin = sa.create_engine(database_url, poolclass=sa.NullPool)
    with admin.connect() as connection:
        connection.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()


def test_an_idle_connection_the_database_dropped_is_replaced_unseen(
    pool_engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = backend_pid(pool_engine)
    terminate(database_url, first)
    monkeypatch.setattr(engine_module, "IDLE_PING_S", 0.0)  # every connection counts as idle
    assert backend_pid(pool_engine) != first


def test_a_connection_back_from_a_request_moments_ago_is_not_pinged(
    pool_engine: Engine, database_url: str
) -> None:
    first = backend_pid(pool_engine)
    assert backend_pid(pool_engine) == first  # the same connection, reused
    terminate(database_url, first)
    # Not pinged, so the drop shows on the next query, as a request's database error (the
    # API answers it 503); the pool then starts over with fresh connections.
    with pytest.raises(sa.exc.OperationalError):
        backend_pid(pool_engine)
    assert backend_pid(pool_engine) != first
