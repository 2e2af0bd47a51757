"""A team's caps at submission (priority, runs per sweep, queued runs) and its standing."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.services import keys
from app.stores import teams

BODY: dict[str, Any] = {  # 12 runs
    "workflow": "demo-noise",
    "base": {"width": 256, "height": 256},
    "axes": [
        {"param": "blur_radius", "values": "1-9 (+4)"},
        {"param": "strength", "values": [0.2, 0.8]},
    ],
    "seeds": {"count": 2, "start": 100},
}


@pytest.fixture
def capped(app: FastAPI) -> tuple[TestClient, str]:
    """A client of a new team with weight 2 and caps, and the team's name."""
    name = f"capped-{uuid4().hex[:8]}"
    with app.state.session_factory() as session:
        key = keys.create_key(session, name).plaintext
        limits = {"weight": 2, "max_priority": 80, "max_runs_per_sweep": 20, "max_queued": 30}
        teams.set_limits(session, name, {**limits, "max_running": 4})
        session.commit()
    return TestClient(app, headers={"Authorization": f"Bearer {key}"}), name


def test_priority_defaults_to_50_and_is_0_to_100(client: TestClient) -> None:
    assert client.post("/v1/sweeps", json=BODY).status_code == 201
    response = client.post("/v1/sweeps", json={**BODY, "priority": 101})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "priority"]


def test_a_priority_above_the_teams_max_is_refused_naming_priority(
    capped: tuple[TestClient, str],
) -> None:
    client, _ = capped
    response = client.post("/v1/sweeps", json={**BODY, "priority": 90})
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["body", "priority"]
    assert "max_priority of 80" in problem["msg"]
    assert client.post("/v1/sweeps", json={**BODY, "priority": 80}).status_code == 201


def test_a_sweep_above_max_runs_per_sweep_is_refused_naming_it(
    capped: tuple[TestClient, str],
) -> None:
    client, _ = capped
    big = {**BODY, "seeds": {"count": 4, "start": 1}}  # 24 runs
    response = client.post("/v1/sweeps", json=big)
    assert response.status_code == 422
    assert "max_runs_per_sweep of 20" in response.json()["detail"][0]["msg"]


def test_past_the_queued_cap_the_answer_is_429_json_with_retry_after(
    capped: tuple[TestClient, str],
) -> None:
    client, _ = capped
    assert client.post("/v1/sweeps", json=BODY).status_code == 201
    assert client.post("/v1/sweeps", json=BODY).status_code == 201  # 24 queued of 30
    response = client.post("/v1/sweeps", json=BODY)
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "max_queued of 30" in response.json()["detail"]


def test_my_team_shows_weight_caps_and_usage(capped: tuple[TestClient, str]) -> None:
    client, name = capped
    assert client.post("/v1/sweeps", json=BODY).status_code == 201
    response = client.get("/v1/teams/me")
    assert response.status_code == 200
    assert response.json() == {
        "name": name,
        "weight": 2,
        "max_running": 4,
        "max_queued": 30,
        "max_runs_per_sweep": 20,
        "max_priority": 80,
        "running": 0,
        "queued": 12,
    }
