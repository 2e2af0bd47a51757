"""Who may do what: every /v1 route needs a live key, and a key sees only its team's sweeps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app import cli as operator_cli
from app.api.callers import TTL_S, CallerCache
from app.db.models import ApiKey
from app.main import create_app
from app.services import keys
from app.settings import Settings
from app.stores import teams
from tests.api.conftest import mint_key
from tests.conftest import REDIS_URL


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(app: FastAPI) -> Iterator[FakeClock]:
    """The app's cache of callers on a clock the test moves (pytest's monkeypatch cannot
    restore an attribute of Starlette's `State`)."""
    fake, kept = FakeClock(), app.state.callers
    app.state.callers = CallerCache(clock=fake)
    try:
        yield fake
    finally:
        app.state.callers = kept


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


def revoke_elsewhere(app: FastAPI, key: str) -> None:
    """Revoked as another process would (the CLI, another API worker): in the database
    alone, unseen by this process's cache of callers."""
    with app.state.session_factory() as session:
        query = sa.update(ApiKey).where(ApiKey.key_hash == keys.hash_key(key))
        session.execute(query.values(revoked_at=datetime.now(UTC)))
        session.commit()


def test_a_key_revoked_elsewhere_is_refused_once_its_cache_entry_lapses(
    app: FastAPI, clock: FakeClock
) -> None:
    key = mint_key(app, "revoked-elsewhere")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/sweeps").status_code == 200
        revoke_elsewhere(app, key)
        clock.now += TTL_S * 0.9
        assert c.get("/v1/sweeps").status_code == 200  # the documented bound, not beyond
        clock.now += TTL_S * 0.1
        assert c.get("/v1/sweeps").status_code == 401


def test_a_key_revoked_elsewhere_is_refused_within_the_bound_in_real_time(app: FastAPI) -> None:
    key = mint_key(app, "revoked-elsewhere-live")
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        assert c.get("/v1/sweeps").status_code == 200
        revoke_elsewhere(app, key)
        revoked_at = time.monotonic()
        while c.get("/v1/sweeps").status_code == 200:
            assert time.monotonic() - revoked_at < TTL_S + 0.5
            time.sleep(0.05)
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


def test_a_key_is_not_rewritten_on_every_request(app: FastAPI, clock: FakeClock) -> None:
    key = mint_key(app, "busy")
    recently = datetime.now(UTC) - timedelta(seconds=10)
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as c:
        set_last_used(app, key, recently)
        assert c.get("/v1/sweeps").status_code == 200
        assert last_used(app, key) == recently
        set_last_used(app, key, long_ago)
        clock.now += TTL_S  # the key is looked up again, not taken from the cache
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
