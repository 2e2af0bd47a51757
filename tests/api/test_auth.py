"""Who may do what: every /v1 route needs a live key, and a key sees only its team's sweeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import cli as operator_cli
from app.db.models import ApiKey
from app.main import create_app
from app.services import keys
from app.settings import Settings
from app.stores import teams
from tests.api.conftest import mint_key
from tests.conftest import REDIS_URL

V1_ROUTES = ["/v1/sweeps", "/v1/workflows", "/v1/workflows/demo-noise"]


@pytest.mark.parametrize("path", V1_ROUTES)
def test_v1_routes_refuse_a_request_without_a_key(app: FastAPI, path: str) -> None:
    with TestClient(app) as anonymous:
        response = anonymous.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_unknown_key_is_refused(client: TestClient) -> None:
    response = client.get("/v1/sweeps", headers={"Authorization": "Bearer csk_not-a-real-key"})
    assert response.status_code == 401


def test_a_revoked_key_is_refused_at_once(app: FastAPI) -> None:
    key = mint_key(app, "revokers")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/sweeps").status_code == 200
        with app.state.session_factory() as session:
            assert keys.revoke_key(session, key[: keys.VISIBLE_CHARS]) == 1
        assert c.get("/v1/sweeps").status_code == 401


def last_used(app: FastAPI, key: str) -> datetime | None:
    with app.state.session_factory() as session:
        stored = teams.find_active_key(session, keys.hash_key(key))
    assert stored is not None
    return stored.last_used_at


def set_last_used(app: FastAPI, key: str, when: datetime) -> None:
    with app.state.session_factory() as session:
        query = sa.update(ApiKey).where(ApiKey.key_hash == keys.hash_key(key))
        session.execute(query.values(last_used_at=when))
        session.commit()


def test_a_key_used_on_a_read_only_request_shows_when_it_was_last_used(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = mint_key(app, "listers")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/workflows").status_code == 200
    used = last_used(app, key)
    assert used is not None
    assert datetime.now(UTC) - used < timedelta(minutes=1)

    # The app's sessions rather than the CLI's own engine, which it leaves to process exit.
    monkeypatch.setattr(operator_cli, "_sessions", app.state.session_factory)
    monkeypatch.setenv("COLUMNS", "200")  # so rich does not wrap the table's cells
    listing = CliRunner().invoke(operator_cli.cli, ["keys", "list", "--team", "listers"])
    assert listing.exit_code == 0, listing.output
    assert f"{used:%Y-%m-%d %H:%M}" in listing.output


def test_a_key_is_not_rewritten_on_every_request(app: FastAPI) -> None:
    key = mint_key(app, "busy")
    recently = datetime.now(UTC) - timedelta(seconds=10)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        set_last_used(app, key, recently)
        assert c.get("/v1/sweeps").status_code == 200
        assert last_used(app, key) == recently
        set_last_used(app, key, long_ago)
        assert c.get("/v1/sweeps").status_code == 200
        used = last_used(app, key)
    assert used is not None
    assert used > recently


def test_keys_are_stored_only_as_hashes(app: FastAPI) -> None:
    key = mint_key(app, "hashers")
    with app.state.session_factory() as session:
        stored = teams.find_active_key(session, keys.hash_key(key))
    assert stored is not None
    assert key not in (stored.key_hash, stored.prefix)


def test_health_needs_no_key(app: FastAPI) -> None:
    with TestClient(app) as anonymous:
        assert anonymous.get("/healthz").json()["status"] == "ok"


def test_auth_can_be_turned_off_explicitly(database_url: str, queue_name: str) -> None:
    app = create_app(
        Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue_name,
            auth_enabled=False,
        )
    )
    with TestClient(app) as anonymous:
        assert anonymous.get("/v1/workflows").status_code == 200
    app.state.engine.dispose()
