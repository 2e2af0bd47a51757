"""Who may do what: every /v1 route needs a live key, and a key sees only its team's sweeps."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

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
