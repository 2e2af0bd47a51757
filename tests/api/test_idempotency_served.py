"""Many clients retrying one submission at once, over real HTTP to the API served as in
production (`python -m app.serve`, two processes) on Postgres: one sweep, whatever the race."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from sqlalchemy.orm import Session

from app.db.models import Run, Sweep, Team
from app.settings import Settings
from tests.api.conftest import mint_key
from tests.support.serving import serve_process

pytestmark = pytest.mark.timeout(180)

CLIENTS = 24
BODY = {"workflow": "demo-noise", "axes": [{"param": "blur_radius", "values": "1-9"}]}


@pytest.fixture
def served(settings: Settings) -> Iterator[str]:
    # Two processes, each with its own pool and admission line: only the database can
    # decide between them. Nobody is shed, so every client's request reaches a route.
    with serve_process(settings, {"API_WORKERS": "2", "API_QUEUE_TIMEOUT_S": "60"}) as base:
        yield base


def test_concurrent_submissions_with_one_key_make_exactly_one_sweep(
    app: FastAPI, served: str
) -> None:
    team = f"race-{uuid4().hex[:8]}"
    headers = {"Authorization": f"Bearer {mint_key(app, team)}", "Idempotency-Key": "one-sweep"}
    start = threading.Barrier(CLIENTS)

    def submit(_: int) -> httpx.Response:
        with httpx.Client(base_url=served, headers=headers, timeout=60) as client:
            client.get("/healthz")  # connected before the race starts
            start.wait()
            return client.post("/v1/sweeps", json=BODY)

    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(submit, range(CLIENTS)))

    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) <= {201, 409}, [a.text for a in answers if a.status_code not in (201, 409)]
    created = [a for a in answers if a.status_code == 201]
    fresh = [a for a in created if "Idempotent-Replayed" not in a.headers]
    assert len(fresh) == 1, statuses
    sweep_id = fresh[0].json()["id"]
    assert {a.json()["id"] for a in created} == {sweep_id}
    assert {a.headers["Location"] for a in created} == {f"/v1/sweeps/{sweep_id}"}
    for busy in (a for a in answers if a.status_code == 409):
        assert busy.headers["Retry-After"] == "1"
        assert busy.json()["detail"][0]["type"] == "idempotency_key_in_use"
    # A client told to retry gets the one sweep too.
    retried = httpx.post(f"{served}/v1/sweeps", json=BODY, headers=headers, timeout=30)
    assert retried.status_code == 201
    assert retried.json()["id"] == sweep_id

    session: Session
    with app.state.session_factory() as session:
        team_id = session.scalar(sa.select(Team.id).where(Team.name == team))
        sweeps = session.scalars(sa.select(Sweep.id).where(Sweep.team_id == team_id)).all()
        runs = session.scalar(sa.select(sa.func.count()).where(Run.sweep_id.in_(sweeps)))
    assert [str(s) for s in sweeps] == [sweep_id]
    assert runs == 9
