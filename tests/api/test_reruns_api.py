"""Retrying a sweep's failed runs and extending a sweep, over HTTP: which runs are queued
again, what they keep of earlier attempts, and the sweep's status, counters and claimable
row moving with them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, get_args
from uuid import UUID, uuid4

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.api.schemas.sweeps import ErrorType
from app.comfy.errors import ERROR_KINDS
from app.db.base import utc_now
from app.db.models import ActiveSweep
from app.domain.states import RunStatus, SweepStatus, final_sweep_status
from app.media.storage import Storage
from app.services import keys
from app.stores import runs, sweeps, teams
from tests.support.run_counts import assert_counts_match_recount
from workers import finalization
from workers.comfy_session import ComfySession
from workers.runtime import Runtime

GRID: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64, "height": 64},
    "axes": [{"param": "blur_radius", "values": [1, 3]}],
    "seeds": {"count": 2, "start": 7},
}
BOOM = {"kind": "execution", "message": "boom", "node_id": "2"}
SLOW = {"kind": "timeout", "message": "too slow"}


def submit(client: TestClient, body: dict[str, Any] | None = None) -> str:
    response = client.post("/v1/sweeps", json=body or GRID)
    assert response.status_code == 201, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def finish(
    app: FastAPI, sweep_id: str, index: int, status: RunStatus, error: dict[str, Any] | None = None
) -> None:
    """Through the store's transitions, as a worker would, so the sweep's counters move."""
    with app.state.session_factory() as session:
        run = runs.get_run(session, UUID(sweep_id), index)
        assert run is not None
        until = utc_now() + timedelta(minutes=1)
        claim = runs.start_run(session, run.id, "http://gpu0:8188", f"task-{index}", until)
        assert claim is not None
        assert runs.finish_run(session, claim, status, error)
        session.commit()


def end(app: FastAPI, sweep_id: str) -> SweepStatus:
    """running, then finalizing and final as the finalizer would move it."""
    with app.state.session_factory() as session:
        sid = UUID(sweep_id)
        sweeps.move_sweep(session, sid, [SweepStatus.PENDING], SweepStatus.RUNNING)
        assert sweeps.start_finalizing_if_drained(session, sid)
        sweep = sweeps.find_sweep(session, sid)
        assert sweep is not None
        status = final_sweep_status(sweeps.run_counts(sweep))
        assert sweeps.move_sweep(session, sid, [SweepStatus.FINALIZING], status)
        session.commit()
    return status


def partial_sweep(app: FastAPI, client: TestClient) -> str:
    """Runs 0 and 2 succeeded, 1 failed in execution, 3 timed out: ended partial."""
    sweep_id = submit(client)
    finish(app, sweep_id, 0, RunStatus.SUCCEEDED)
    finish(app, sweep_id, 1, RunStatus.FAILED, BOOM)
    finish(app, sweep_id, 2, RunStatus.SUCCEEDED)
    finish(app, sweep_id, 3, RunStatus.FAILED, SLOW)
    assert end(app, sweep_id) is SweepStatus.PARTIAL
    return sweep_id


def claimable(app: FastAPI, sweep_id: str) -> bool | None:
    """The sweep's row in active_sweeps: None if it has none."""
    session: Session
    with app.state.session_factory() as session:
        assert_counts_match_recount(session, UUID(sweep_id))
        query = sa.select(ActiveSweep.active).where(ActiveSweep.sweep_id == UUID(sweep_id))
        active: bool | None = session.scalar(query)
    return active


def statuses(client: TestClient, sweep_id: str) -> list[str]:
    items = client.get(f"/v1/sweeps/{sweep_id}/runs").json()["items"]
    return [run["status"] for run in items]


def test_retry_queues_only_the_failed_runs_and_reopens_an_ended_sweep(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = partial_sweep(app, client)
    assert claimable(app, sweep_id) is None
    response = client.post(f"/v1/sweeps/{sweep_id}/retry")
    assert response.status_code == 200, response.text
    sweep = response.json()
    assert (sweep["status"], sweep["queued"], sweep["finished_at"]) == ("running", 2, None)
    assert (
        sweep["workflow_version"] == client.get(f"/v1/sweeps/{sweep_id}").json()["workflow_version"]
    )
    assert sweep["workflow_version"] is not None
    assert sweep["counts"] == {**sweep["counts"], "succeeded": 2, "failed": 0, "queued": 2}
    assert statuses(client, sweep_id) == ["succeeded", "queued", "succeeded", "queued"]
    assert claimable(app, sweep_id) is True


def test_a_retried_run_keeps_its_first_attempt_in_its_history(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = partial_sweep(app, client)
    assert client.post(f"/v1/sweeps/{sweep_id}/retry").status_code == 200
    run = client.get(f"/v1/sweeps/{sweep_id}/runs/1").json()
    assert (run["status"], run["error"], run["instance"], run["started_at"]) == (
        "queued",
        None,
        None,
        None,
    )
    [past] = run["past_attempts"]
    assert (past["attempt"], past["status"], past["instance"]) == (1, "failed", "http://gpu0:8188")
    assert past["error"] == BOOM
    assert past["started_at"] is not None
    assert past["finished_at"] is not None
    # Its second attempt ends; a second retry keeps both.
    finish(app, sweep_id, 1, RunStatus.FAILED, SLOW)
    finish(app, sweep_id, 3, RunStatus.SUCCEEDED)
    assert client.post(f"/v1/sweeps/{sweep_id}/retry").json()["queued"] == 1
    history = client.get(f"/v1/sweeps/{sweep_id}/runs/1").json()["past_attempts"]
    assert [(a["attempt"], a["error"]) for a in history] == [(1, BOOM), (2, SLOW)]


def test_retry_by_error_type_queues_only_runs_failed_that_way(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = partial_sweep(app, client)
    response = client.post(f"/v1/sweeps/{sweep_id}/retry", json={"error_type": "timeout"})
    assert response.json()["queued"] == 1
    assert statuses(client, sweep_id) == ["succeeded", "failed", "succeeded", "queued"]


def test_a_retry_with_nothing_to_retry_is_a_conflict_and_changes_nothing(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = partial_sweep(app, client)
    response = client.post(f"/v1/sweeps/{sweep_id}/retry", json={"error_type": "validation"})
    assert response.status_code == 409
    assert "partial" in response.json()["detail"]
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["status"] == "partial"
    assert statuses(client, sweep_id) == ["succeeded", "failed", "succeeded", "failed"]


def test_cancelled_runs_are_retried_only_on_request(app: FastAPI, client: TestClient) -> None:
    sweep_id = submit(client)
    finish(app, sweep_id, 0, RunStatus.SUCCEEDED)
    assert client.post(f"/v1/sweeps/{sweep_id}/cancel").json()["status"] == "cancelled"
    assert client.post(f"/v1/sweeps/{sweep_id}/retry").status_code == 409
    response = client.post(f"/v1/sweeps/{sweep_id}/retry", json={"status": ["cancelled"]})
    assert response.status_code == 200, response.text
    assert (response.json()["status"], response.json()["queued"]) == ("running", 3)
    assert statuses(client, sweep_id) == ["succeeded", "queued", "queued", "queued"]
    # Cancelled before they ever started: no attempt to keep.
    assert client.get(f"/v1/sweeps/{sweep_id}/runs/1").json()["past_attempts"] == []
    assert claimable(app, sweep_id) is True


def test_retry_of_a_running_sweep_requeues_its_failed_runs_and_keeps_it_running(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = submit(client)
    with app.state.session_factory() as session:
        sid = UUID(sweep_id)
        assert sweeps.move_sweep(session, sid, [SweepStatus.PENDING], SweepStatus.RUNNING)
        session.commit()
    finish(app, sweep_id, 0, RunStatus.FAILED, BOOM)
    finish(app, sweep_id, 1, RunStatus.SUCCEEDED)
    response = client.post(f"/v1/sweeps/{sweep_id}/retry")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["queued"]) == ("running", 1)
    assert statuses(client, sweep_id) == ["queued", "succeeded", "queued", "queued"]
    assert claimable(app, sweep_id) is True


def test_a_finalizing_sweep_is_not_retried(app: FastAPI, client: TestClient) -> None:
    sweep_id = submit(client)
    for index in range(4):
        finish(app, sweep_id, index, RunStatus.FAILED, BOOM)
    with app.state.session_factory() as session:
        sid = UUID(sweep_id)
        sweeps.move_sweep(session, sid, [SweepStatus.PENDING], SweepStatus.RUNNING)
        assert sweeps.start_finalizing_if_drained(session, sid)
        session.commit()
    response = client.post(f"/v1/sweeps/{sweep_id}/retry")
    assert response.status_code == 409
    assert "finalizing" in response.json()["detail"]
    assert statuses(client, sweep_id) == ["failed"] * 4
    claimable(app, sweep_id)  # counters still match the runs


def test_a_worker_requeue_keeps_the_attempt_it_ends(app: FastAPI, client: TestClient) -> None:
    sweep_id = submit(client)
    with app.state.session_factory() as session:
        run = runs.get_run(session, UUID(sweep_id), 2)
        assert run is not None
        until = utc_now() + timedelta(minutes=1)
        claim = runs.start_run(session, run.id, "http://gpu1:8188", "task", until)
        assert claim is not None
        assert runs.requeue_run(session, claim, {"kind": "transport", "message": "gone"})
        session.commit()
    [past] = client.get(f"/v1/sweeps/{sweep_id}/runs/2").json()["past_attempts"]
    assert (past["attempt"], past["status"], past["instance"]) == (1, "queued", "http://gpu1:8188")
    assert past["error"]["kind"] == "transport"


def test_retry_of_another_teams_sweep_is_not_found(app: FastAPI, team_client: Any) -> None:
    sweep_id = submit(team_client())
    assert team_client().post(f"/v1/sweeps/{sweep_id}/retry").status_code == 404


# --- extension ---


def succeeded_sweep(app: FastAPI, client: TestClient) -> str:
    sweep_id = submit(client)
    for index in range(4):
        finish(app, sweep_id, index, RunStatus.SUCCEEDED)
    assert end(app, sweep_id) is SweepStatus.SUCCEEDED
    return sweep_id


def test_extending_an_axis_queues_only_the_new_cells_after_the_existing_runs(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = succeeded_sweep(app, client)
    before = client.get(f"/v1/sweeps/{sweep_id}/runs").json()["items"]
    body = {"axes": [{"param": "blur_radius", "values": [9]}]}
    response = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
    assert response.status_code == 200, response.text
    sweep = response.json()
    assert (sweep["status"], sweep["total"], sweep["queued"]) == ("running", 6, 2)
    assert sweep["axes"] == [{"param": "blur_radius", "values": [1, 3, 9]}]
    assert sweep["counts"] == {**sweep["counts"], "succeeded": 4, "queued": 2}
    after = client.get(f"/v1/sweeps/{sweep_id}/runs").json()["items"]
    assert after[:4] == before
    assert [(r["index"], r["status"]) for r in after[4:]] == [(4, "queued"), (5, "queued")]
    assert [(r["assignment"]["blur_radius"], r["assignment"]["seed"]) for r in after[4:]] == [
        (9, 7),
        (9, 8),
    ]
    assert claimable(app, sweep_id) is True


def test_extending_with_seeds_and_a_new_axis(app: FastAPI, client: TestClient) -> None:
    sweep_id = succeeded_sweep(app, client)
    body = {"seeds": {"count": 1}, "axes": [{"param": "strength", "values": "0.2"}]}
    sweep = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body).json()
    assert sweep["seeds"] == [7, 8, 9]
    assert sweep["axes"][1] == {"param": "strength", "values": [0.5, 0.2]}
    assert "strength" not in sweep["fixed"]
    assert (sweep["total"], sweep["queued"]) == (12, 8)
    old = client.get(f"/v1/sweeps/{sweep_id}/runs/0").json()
    assert (old["status"], old["assignment"]["strength"]) == ("succeeded", 0.5)


def test_an_extension_names_what_it_refuses(app: FastAPI, client: TestClient) -> None:
    sweep_id = succeeded_sweep(app, client)
    cases = [
        ({"axes": [{"param": "blur", "values": [2]}]}, ["body", "axes", 0, "param"]),
        ({"axes": [{"param": "blur_radius", "values": [5, 3]}]}, ["body", "axes", 0, "values", 1]),
        ({"seeds": {"count": 1, "start": 8}}, ["body", "seeds"]),
    ]
    for body, loc in cases:
        response = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["loc"] == loc
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["total"] == 4


def test_a_zip_sweep_is_not_extended(client: TestClient) -> None:
    strength = {"param": "strength", "values": [0.1]}
    zipped = {**GRID, "mode": "zip", "axes": [*GRID["axes"], strength]}
    sweep_id = submit(client, zipped)
    body = {"axes": [{"param": "blur_radius", "values": [9]}]}
    response = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "not_extendable"


def test_a_cancelled_sweep_is_not_extended(client: TestClient) -> None:
    sweep_id = submit(client)
    client.post(f"/v1/sweeps/{sweep_id}/cancel")
    body = {"axes": [{"param": "blur_radius", "values": [9]}]}
    response = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
    assert response.status_code == 409
    assert "cancelled" in response.json()["detail"]


def test_an_extension_past_max_runs_is_refused(app: FastAPI, client: TestClient) -> None:
    sweep_id = submit(client)
    body = {"axes": [{"param": "blur_radius", "values": "5-31"}], "seeds": {"count": 1000}}
    response = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "too_many_runs"


def test_the_error_types_a_retry_takes_are_the_kinds_runs_fail_with() -> None:
    assert set(get_args(ErrorType)) == ERROR_KINDS


def test_a_stale_finalize_of_a_reopened_sweep_changes_nothing(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = partial_sweep(app, client)
    assert client.post(f"/v1/sweeps/{sweep_id}/retry").status_code == 200
    runtime = Runtime(
        settings=app.state.settings,
        sessions=app.state.session_factory,
        storage=Storage(app.state.settings.data_dir),
        celery=app.state.celery,
        comfy=ComfySession(),
    )
    finalization.finalize(runtime, UUID(sweep_id))  # redelivered from the first ending
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["status"] == "running"
    assert client.get(f"/v1/sweeps/{sweep_id}/grids").status_code == 409


def capped_client(app: FastAPI, **limits: int | None) -> TestClient:
    name = f"capped-{uuid4().hex[:8]}"
    with app.state.session_factory() as session:
        key = keys.create_key(session, name).plaintext
        teams.set_limits(session, name, limits)
        session.commit()
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


def test_an_extension_past_the_teams_max_runs_per_sweep_is_refused(app: FastAPI) -> None:
    client = capped_client(app, max_runs_per_sweep=5)
    sweep_id = submit(client)
    body = {"axes": [{"param": "blur_radius", "values": [9]}]}
    response = client.post(f"/v1/sweeps/{sweep_id}/extend", json=body)
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "above_max_runs_per_sweep"


def test_a_retry_past_the_teams_max_queued_waits_for_room(app: FastAPI) -> None:
    client = capped_client(app, max_queued=5)
    sweep_id = partial_sweep(app, client)
    submit(client, {**GRID, "seeds": {"count": 2, "start": 1}})  # 4 more queued
    response = client.post(f"/v1/sweeps/{sweep_id}/retry")
    assert response.status_code == 429
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["status"] == "partial"
    assert statuses(client, sweep_id) == ["succeeded", "failed", "succeeded", "failed"]


def test_an_extension_read_from_a_plan_since_extended_does_not_apply(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = succeeded_sweep(app, client)
    body = {"axes": [{"param": "blur_radius", "values": [9]}]}
    assert client.post(f"/v1/sweeps/{sweep_id}/extend", json=body).status_code == 200
    with app.state.session_factory() as session:
        assert not sweeps.replace_plan(session, UUID(sweep_id), 4, {}, 6)  # read at total 4
