"""Pausing and resuming sweeps over HTTP: every move, the unchanged answers and the 409s."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID

import pytest
import redis
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db.base import utc_now
from app.db.models import ActiveSweep
from app.domain.states import RunStatus, SweepStatus
from app.queue import START_SWEEP
from app.stores import claims, sweeps
from tests.api.test_sweeps_api import EXAMPLE, finish_runs, submit
from tests.conftest import REDIS_URL

FINAL = ("succeeded", "partial", "failed", "cancelled")


def move(app: FastAPI, sweep_id: str, *path: SweepStatus) -> None:
    """Walk the sweep through `path` with the stores' own compare-and-sets, as workers do."""
    with app.state.session_factory() as session:
        for source, target in zip((SweepStatus.PENDING, *path), path, strict=False):
            assert sweeps.move_sweep(
                session, UUID(sweep_id), [source], target, started_at=utc_now()
            )
        session.commit()


def to_final(app: FastAPI, sweep_id: str, status: str) -> None:
    if status == "cancelled":
        move(app, sweep_id, SweepStatus.CANCELLED)
    else:
        move(app, sweep_id, SweepStatus.RUNNING, SweepStatus.FINALIZING, SweepStatus(status))


def active_flag(app: FastAPI, sweep_id: str) -> bool | None:
    """The sweep's active_sweeps flag; None when it has no row (nothing queued)."""
    with app.state.session_factory() as session:
        query = sa.select(ActiveSweep.active).where(ActiveSweep.sweep_id == UUID(sweep_id))
        flag: bool | None = session.scalar(query)
        return flag


def claimable(app: FastAPI, sweep_id: str) -> bool:
    with app.state.session_factory() as session:
        waiting = claims.waiting_sweeps(session).waiting
        return UUID(sweep_id) in {w.sweep_id for w in waiting}


def start_messages(queue_name: str, sweep_id: str) -> int:
    """Start messages for the sweep waiting in the session's queue (no worker consumes it)."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        raw: Iterable[bytes] = client.lrange(queue_name, 0, -1)  # type: ignore[assignment]
    finally:
        client.close()
    headers = [json.loads(message)["headers"] for message in raw]
    return sum(1 for h in headers if h["task"] == START_SWEEP and sweep_id in h["argsrepr"])


def post(client: TestClient, sweep_id: str, action: str, expect: int = 200) -> dict[str, Any]:
    response = client.post(f"/v1/sweeps/{sweep_id}/{action}")
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_pausing_a_pending_sweep_holds_its_runs_and_resuming_releases_them(
    app: FastAPI, client: TestClient, queue_name: str
) -> None:
    sweep_id = submit(client)["id"]
    paused = post(client, sweep_id, "pause")
    assert paused["status"] == "paused"
    assert paused["counts"]["queued"] == 12
    assert active_flag(app, sweep_id) is False
    assert not claimable(app, sweep_id)

    before = start_messages(queue_name, sweep_id)
    resumed = post(client, sweep_id, "resume")
    assert resumed["status"] == "pending"  # it never started: it starts as a new one does
    assert resumed["started_at"] is None
    assert active_flag(app, sweep_id) is True
    assert claimable(app, sweep_id)
    assert start_messages(queue_name, sweep_id) == before + 1


def test_a_paused_running_sweep_resumes_running_and_wakes_the_workers(
    app: FastAPI, client: TestClient, queue_name: str
) -> None:
    sweep_id = submit(client)["id"]
    move(app, sweep_id, SweepStatus.RUNNING)
    started_at = client.get(f"/v1/sweeps/{sweep_id}").json()["started_at"]
    assert post(client, sweep_id, "pause")["status"] == "paused"
    assert not claimable(app, sweep_id)

    before = start_messages(queue_name, sweep_id)
    resumed = post(client, sweep_id, "resume")
    assert resumed["status"] == "running"
    assert resumed["started_at"] == started_at
    assert claimable(app, sweep_id)
    assert start_messages(queue_name, sweep_id) == before + 1


def test_pausing_a_paused_sweep_returns_it_unchanged(app: FastAPI, client: TestClient) -> None:
    sweep_id = submit(client)["id"]
    first = post(client, sweep_id, "pause")
    again = post(client, sweep_id, "pause")
    assert again == first
    assert active_flag(app, sweep_id) is False


@pytest.mark.parametrize("path", [(), (SweepStatus.RUNNING,)], ids=["pending", "running"])
def test_resuming_a_sweep_that_is_not_paused_returns_it_unchanged(
    app: FastAPI, client: TestClient, queue_name: str, path: tuple[SweepStatus, ...]
) -> None:
    sweep_id = submit(client)["id"]
    move(app, sweep_id, *path)
    before = client.get(f"/v1/sweeps/{sweep_id}").json()
    messages = start_messages(queue_name, sweep_id)
    assert post(client, sweep_id, "resume") == before
    assert start_messages(queue_name, sweep_id) == messages  # nothing to wake


@pytest.mark.parametrize("status", FINAL)
@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pausing_or_resuming_a_finished_sweep_is_a_conflict_naming_its_status(
    app: FastAPI, client: TestClient, status: str, action: str
) -> None:
    sweep_id = submit(client)["id"]
    to_final(app, sweep_id, status)
    detail = post(client, sweep_id, action, expect=409)["detail"]
    assert f"is {status}" in detail
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["status"] == status


def test_a_finalizing_sweep_cannot_be_paused_and_resuming_it_changes_nothing(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = submit(client)["id"]
    move(app, sweep_id, SweepStatus.RUNNING, SweepStatus.FINALIZING)
    assert "is finalizing" in post(client, sweep_id, "pause", expect=409)["detail"]
    assert post(client, sweep_id, "resume")["status"] == "finalizing"


def test_a_paused_sweep_can_be_cancelled(app: FastAPI, client: TestClient) -> None:
    sweep_id = submit(client)["id"]
    post(client, sweep_id, "pause")
    cancelled = post(client, sweep_id, "cancel")
    assert cancelled["status"] == "cancelled"
    assert cancelled["counts"]["cancelled"] == 12
    assert cancelled["counts"]["queued"] == 0
    assert active_flag(app, sweep_id) is None
    assert "is cancelled" in post(client, sweep_id, "resume", expect=409)["detail"]


def test_a_sweep_submitted_paused_is_stored_but_not_started(
    app: FastAPI, client: TestClient, queue_name: str
) -> None:
    sweep = submit(client, {**EXAMPLE, "paused": True})
    assert sweep["status"] == "paused"
    assert sweep["counts"]["queued"] == 12
    assert active_flag(app, sweep["id"]) is False
    assert not claimable(app, sweep["id"])
    assert start_messages(queue_name, sweep["id"]) == 0
    assert post(client, sweep["id"], "resume")["status"] == "pending"
    assert claimable(app, sweep["id"])
    assert start_messages(queue_name, sweep["id"]) == 1


def test_another_teams_sweep_cannot_be_paused_or_resumed(
    client: TestClient, team_client: Any
) -> None:
    sweep_id = submit(client)["id"]
    stranger = team_client()
    for action in ("pause", "resume"):
        assert stranger.post(f"/v1/sweeps/{sweep_id}/{action}").status_code == 404
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["status"] == "pending"


def test_runs_retried_into_a_paused_sweep_wait_for_its_resume(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = submit(client)["id"]
    finish_runs(app, sweep_id, range(2), RunStatus.FAILED)
    post(client, sweep_id, "pause")
    retried = post(client, sweep_id, "retry")
    assert retried["status"] == "paused"
    assert retried["counts"]["queued"] == 12
    assert not claimable(app, sweep_id)
    assert post(client, sweep_id, "resume")["status"] == "pending"
    assert claimable(app, sweep_id)


def test_a_sweep_cancelled_before_it_started_and_retried_runs_as_started(
    client: TestClient,
) -> None:
    sweep_id = submit(client)["id"]
    post(client, sweep_id, "cancel")
    reopened = client.post(f"/v1/sweeps/{sweep_id}/retry", json={"status": ["cancelled"]})
    assert reopened.status_code == 200, reopened.text
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["status"] == "running"
    assert sweep["started_at"] is not None
