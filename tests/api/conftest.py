"""An app on the session's migrated Postgres, and clients holding keys of fresh teams.

The app runs with its own engine, so API tests commit for real; each test gets its own
team, and every read is scoped to a team, which keeps tests apart without truncation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import keys
from app.settings import Settings
from tests.conftest import REDIS_URL

ClientFactory = Callable[..., TestClient]


@pytest.fixture(scope="session")
def settings(
    database_url: str, queue_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=queue_name,
        data_dir=tmp_path_factory.mktemp("data"),
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[FastAPI]:
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


def mint_key(app: FastAPI, team: str) -> str:
    with app.state.session_factory() as session:
        return keys.create_key(session, team).plaintext


@pytest.fixture
def team_client(app: FastAPI) -> Iterator[ClientFactory]:
    """Makes clients that authenticate as a new team each (or a named one)."""
    clients: list[TestClient] = []

    def make(team: str | None = None) -> TestClient:
        key = mint_key(app, team or f"team-{uuid4().hex[:8]}")
        client = TestClient(app, headers={"Authorization": f"Bearer {key}"})
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def client(team_client: ClientFactory) -> TestClient:
    return team_client()
