"""`POST /v1/sweeps?dry_run=true`: validated as a submission, answered with its estimate and
the caps it would break; nothing stored, nothing sent. A submitted sweep keeps its estimate."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
import redis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.services import keys
from app.settings import Settings
from app.stores import teams
from tests.conftest import REDIS_URL

BODY: dict[str, Any] = {  # 12 runs of 64×32 images
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 32},
    "axes": [
        {"param": "blur_radius", "values": "1-9 (+4)"},
        {"param": "strength", "values": [0.2, 0.8]},
    ],
    "seeds": {"count": 2, "start": 100},
}
DRY = {"dry_run": "true"}


@pytest.fixture
def broker(settings: Settings) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL)
    yield client
    client.close()


def stored_rows(app: FastAPI) -> dict[str, int]:
    with app.state.engine.connect() as connection:
        return {
            table: connection.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0  # noqa: S608
            for table in ("sweeps", "runs", "active_sweeps")
        }


def test_a_dry_run_answers_the_estimate_and_stores_and_sends_nothing(
    app: FastAPI, client: TestClient, settings: Settings, broker: redis.Redis
) -> None:
    rows, messages = stored_rows(app), broker.llen(settings.queue_name)
    response = client.post("/v1/sweeps", params=DRY, json=BODY)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["dry_run"] is True
    assert answer["workflow"] == "demo-noise"
    assert answer["runs"] == 12
    assert answer["steps"] is None  # demo-noise has no sampler
    assert answer["megapixels"] == pytest.approx(12 * 64 * 32 / 1e6)
    assert answer["work_unit"] == "megapixel"
    assert answer["model_loads"] == 0
    assert answer["exceeds"] == []
    assert answer["gpu_seconds"] is None
    assert answer["finish_at"] is None
    assert answer["reason"] == "no history yet"
    assert "Location" not in response.headers
    assert stored_rows(app) == rows
    assert broker.llen(settings.queue_name) == messages
    assert client.get("/v1/sweeps").json()["total"] == 0
    # The same body submitted is stored and sent: the checks above can see both.
    assert client.post("/v1/sweeps", json=BODY).status_code == 201
    assert stored_rows(app)["sweeps"] == rows["sweeps"] + 1
    assert broker.llen(settings.queue_name) == messages + 1


def test_a_dry_run_of_invalid_input_is_the_same_422(client: TestClient) -> None:
    body = {**BODY, "axes": [{"param": "blur_radius", "values": [1, 999]}]}
    submitted = client.post("/v1/sweeps", json=body)
    dry = client.post("/v1/sweeps", params=DRY, json=body)
    assert dry.status_code == submitted.status_code == 422
    assert dry.json() == submitted.json()
    unknown = client.post("/v1/sweeps", params=DRY, json={**BODY, "workflow": "nope"})
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["loc"] == ["body", "workflow"]


@pytest.fixture
def capped(app: FastAPI) -> TestClient:
    name = f"capped-{uuid4().hex[:8]}"
    with app.state.session_factory() as session:
        key = keys.create_key(session, name).plaintext
        limits: dict[str, int | None] = {
            "max_priority": 80,
            "max_runs_per_sweep": 20,
            "max_queued": 30,
        }
        teams.set_limits(session, name, limits)
        session.commit()
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


def test_a_dry_run_lists_every_cap_a_submission_would_break_instead_of_refusing(
    capped: TestClient,
) -> None:
    assert capped.post("/v1/sweeps", json=BODY).status_code == 201  # 12 of 30 queued
    big = {**BODY, "seeds": {"count": 4, "start": 1}, "priority": 90}  # 24 runs
    response = capped.post("/v1/sweeps", params=DRY, json=big)
    assert response.status_code == 200, response.text
    assert response.json()["exceeds"] == [
        {"quota": "max_priority", "limit": 80, "value": 90},
        {"quota": "max_runs_per_sweep", "limit": 20, "value": 24},
        {"quota": "max_queued", "limit": 30, "value": 36},
    ]
    assert capped.post("/v1/sweeps", json=big).status_code == 422  # as the list says
    fits = capped.post("/v1/sweeps", params=DRY, json=BODY)
    assert fits.json()["exceeds"] == []


def test_the_queue_ahead_counts_queued_runs_of_equal_or_higher_priority(
    client: TestClient, team_client: Any
) -> None:
    def ahead(priority: int) -> int:
        response = client.post("/v1/sweeps", params=DRY, json={**BODY, "priority": priority})
        value: int = response.json()["queue_ahead_runs"]
        return value

    before = {priority: ahead(priority) for priority in (40, 60, 70)}
    other = team_client()
    assert other.post("/v1/sweeps", json={**BODY, "priority": 60}).status_code == 201
    assert ahead(40) == before[40] + 12
    assert ahead(60) == before[60] + 12
    assert ahead(70) == before[70]


def test_a_submitted_sweep_shows_its_estimate_and_no_elapsed_time_until_it_ends(
    client: TestClient,
) -> None:
    dry = client.post("/v1/sweeps", params=DRY, json=BODY).json()
    created = client.post("/v1/sweeps", json=BODY)
    assert created.status_code == 201
    for shown in (created.json(), client.get(created.headers["Location"]).json()):
        estimate = shown["estimate"]
        assert estimate["runs"] == 12
        assert estimate["megapixels"] == dry["megapixels"]
        assert estimate["reason"] == "no history yet"
        assert "exceeds" not in estimate
        assert shown["elapsed_s"] is None
