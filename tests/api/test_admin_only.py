"""`require_admin`: routes that act on the whole farm answer a member's key with 403 JSON."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from app.api.deps import AdminDep, require_admin
from app.main import create_app
from app.services import keys
from app.settings import Settings


@pytest.fixture(scope="module")
def guarded_app(settings: Settings) -> Iterator[FastAPI]:
    # A throwaway app with one admin-only route, since the farm routes that will use the
    # dependency (instance drain) are not built yet.
    application = create_app(settings)
    router = APIRouter(dependencies=[Depends(require_admin)])

    @router.get("/v1/farm-probe")
    def probe(caller: AdminDep) -> dict[str, str]:
        return {"role": caller.role}

    application.include_router(router)
    yield application
    application.state.engine.dispose()


def client_with_role(app: FastAPI, role: str) -> TestClient:
    with app.state.session_factory() as session:
        key = keys.create_key(session, f"farm-{role}", role=role).plaintext
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


def test_a_member_key_gets_a_403_json_answer(guarded_app: FastAPI) -> None:
    with client_with_role(guarded_app, "member") as member:
        response = member.get("/v1/farm-probe")
    assert response.status_code == 403
    assert response.headers["content-type"] == "application/json"
    assert "admin" in response.json()["detail"]


def test_an_admin_key_passes(guarded_app: FastAPI) -> None:
    with client_with_role(guarded_app, "admin") as admin:
        response = admin.get("/v1/farm-probe")
    assert response.status_code == 200
    assert response.json() == {"role": "admin"}


def test_without_a_key_it_is_401_not_403(guarded_app: FastAPI) -> None:
    with TestClient(guarded_app) as anonymous:
        assert anonymous.get("/v1/farm-probe").status_code == 401
