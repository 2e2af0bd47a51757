"""Database fixtures shared by every test directory; all lazy, so unit tests never touch Postgres.

- `database_url`: a fresh Postgres database for this pytest session, migrated to head with
  the real Alembic revisions, dropped at the end. Its name is unique, so parallel sessions
  (several engineers, CI shards) never collide. The server comes from TEST_DATABASE_ADMIN_URL.
- `engine`: one engine on that database for the session.
- `queue_name`: a Celery queue on the real Redis for this session only.
- `db_session`: a session inside a transaction that is rolled back after the test; code under
  test may commit, which only releases a savepoint.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import pytest
import redis
import sqlalchemy as sa
from alembic import command
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db.engine import make_engine
from app.db.migrate import alembic_config
from tests.support.standin_process import Standin, launch

DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def queue_name() -> Iterator[str]:
    """A Celery queue of this session's own on the real Redis, deleted at the end, so
    messages the API sends in tests never reach another session's workers."""
    with scratch_queue() as name:
        yield name


@contextmanager
def scratch_database(purpose: str) -> Iterator[str]:
    """A new Postgres database migrated to head with the real revisions; dropped after."""
    admin_url = sa.make_url(os.environ.get("TEST_DATABASE_ADMIN_URL", DEFAULT_ADMIN_URL))
    name = f"comfy_sweep_{purpose}_{uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    try:
        config = alembic_config(url)
        config.attributes["configure_logger"] = False  # keep pytest's logging setup
        command.upgrade(config, "head")
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def scratch_queue() -> Iterator[str]:
    name = f"comfy-sweep-test-{uuid4().hex[:12]}"
    try:
        yield name
    finally:
        client = redis.Redis.from_url(REDIS_URL)
        client.delete(name)
        client.close()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with scratch_database("test") as url:
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def db_session(engine: Engine) -> Iterator[Session]:
    with engine.connect() as connection:
        transaction = connection.begin()
        session = Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            session.close()
            transaction.rollback()


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    """A ComfyUI stand-in process for the tests of one module."""
    instance = launch(tmp_path_factory.mktemp("standin"))
    yield instance
    instance.stop()
