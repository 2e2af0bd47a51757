"""Submitting and reading sweeps over HTTP, as a client sees it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from uuid import UUID

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db.base import utc_now
from app.domain.states import RunStatus
from app.stores import runs
from tests.api.conftest import ClientFactory

EXAMPLE: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 256, "height": 256},
    "axes": [
        {"param": "blur_radius", "values": "1-9 (+4)"},
        {"param": "strength", "values": [0.2, 0.8]},
    ],
    "mode": "cartesian",
    "seeds": {"count": 2, "start": 100},
}


def submit(client: TestClient, body: dict[str, Any] | None = None) -> dict[str, Any]:
    response = client.post("/v1/sweeps", json=body or EXAMPLE)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_submit_answers_201_with_location_and_the_expanded_total(client: TestClient) -> None:
    response = client.post("/v1/sweeps", json=EXAMPLE)
    assert response.status_code == 201
    sweep = response.json()
    assert response.headers["Location"] == f"/v1/sweeps/{sweep['id']}"
    assert sweep["status"] == "pending"
    assert sweep["total"] == 3 * 2 * 2


def test_read_sweep_shows_resolved_axes_counts_and_progress(client: TestClient) -> None:
    sweep_id = submit(client)["id"]
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["axes"] == [
        {"param": "blur_radius", "values": [1, 5, 9]},
        {"param": "strength", "values": [0.2, 0.8]},
    ]
    assert sweep["seeds"] == [100, 101]
    assert sweep["counts"]["queued"] == 12
    assert sweep["counts"]["succeeded"] == 0
    assert sweep["progress"] == 0.0
    assert sweep["fixed"]["width"] == 256


def finish_runs(app: FastAPI, sweep_id: str, indices: range, status: RunStatus) -> None:
    """Through the store's transitions, as a worker would, so the sweep's counters move."""
    with app.state.session_factory() as session:
        for index in indices:
            run = runs.get_run(session, UUID(sweep_id), index)
            assert run is not None
            until = utc_now() + timedelta(minutes=1)
            claim = runs.start_run(session, run.id, "http://gpu0:8188", f"task-{index}", until)
            assert claim is not None
            assert runs.finish_run(session, claim, status)
        session.commit()


def test_a_cancelled_sweep_counts_only_executed_runs_as_progress(
    app: FastAPI, client: TestClient
) -> None:
    sweep_id = submit(client)["id"]
    finish_runs(app, sweep_id, range(2), RunStatus.SUCCEEDED)
    finish_runs(app, sweep_id, range(2, 3), RunStatus.FAILED)
    assert client.post(f"/v1/sweeps/{sweep_id}/cancel").status_code == 200
    sweep = client.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["status"] == "cancelled"
    assert sweep["counts"] == {**sweep["counts"], "succeeded": 2, "failed": 1, "cancelled": 9}
    assert sweep["progress"] == 3 / 12  # the nine cancelled runs never ran


def test_a_sweep_whose_runs_all_executed_is_complete(app: FastAPI, client: TestClient) -> None:
    sweep_id = submit(client)["id"]
    finish_runs(app, sweep_id, range(6), RunStatus.SUCCEEDED)
    finish_runs(app, sweep_id, range(6, 12), RunStatus.FAILED)
    assert client.get(f"/v1/sweeps/{sweep_id}").json()["progress"] == 1.0


def test_runs_hold_full_assignments_in_index_order(client: TestClient) -> None:
    sweep_id = submit(client)["id"]
    page = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"limit": 5}).json()
    assert page["total"] == 12
    assert [r["index"] for r in page["items"]] == [0, 1, 2, 3, 4]
    first, second = page["items"][0]["assignment"], page["items"][1]["assignment"]
    assert first == {**first, "blur_radius": 1, "strength": 0.2, "seed": 100, "width": 256}
    assert second["seed"] == 101  # seeds vary fastest, within a cell
    assert {"height", "color", "sigma"} <= set(first)  # contract defaults fill the rest


def test_runs_page_by_offset_and_filter_by_status(client: TestClient) -> None:
    sweep_id = submit(client)["id"]
    tail = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"offset": 10, "limit": 5}).json()
    assert [r["index"] for r in tail["items"]] == [10, 11]
    assert (tail["offset"], tail["limit"]) == (10, 5)
    queued = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"status": "queued"}).json()
    failed = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"status": "failed"}).json()
    assert (queued["total"], failed["total"]) == (12, 0)


def test_sweeps_list_newest_first_and_pages(client: TestClient) -> None:
    ids = [submit(client)["id"] for _ in range(3)]
    page = client.get("/v1/sweeps", params={"limit": 2}).json()
    assert page["total"] == 3
    assert [s["id"] for s in page["items"]] == ids[::-1][:2]
    rest = client.get("/v1/sweeps", params={"offset": 2, "limit": 2}).json()
    assert [s["id"] for s in rest["items"]] == [ids[0]]


def test_random_seeds_are_drawn_once_and_stored(client: TestClient) -> None:
    body = {**EXAMPLE, "seeds": {"count": 3, "random": True}}
    sweep_id = submit(client, body)["id"]
    seeds = client.get(f"/v1/sweeps/{sweep_id}").json()["seeds"]
    assert len(set(seeds)) == 3
    runs = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"limit": 3}).json()["items"]
    assert [r["assignment"]["seed"] for r in runs] == seeds


def test_zip_mode_cycles_the_shorter_axis(client: TestClient) -> None:
    body = {**EXAMPLE, "mode": "zip", "seeds": None}
    sweep = submit(client, {k: v for k, v in body.items() if v is not None})
    assert sweep["total"] == 3
    runs = client.get(f"/v1/sweeps/{sweep['id']}/runs").json()["items"]
    assert [(r["assignment"]["blur_radius"], r["assignment"]["strength"]) for r in runs] == [
        (1, 0.2),
        (5, 0.8),
        (9, 0.2),
    ]


def test_sampling_draws_points_within_the_ranges(client: TestClient) -> None:
    body = {
        "workflow": "demo-noise",
        "sampling": {
            "strategy": "sobol",
            "samples": 8,
            "seed": 7,
            "ranges": {
                "strength": {"min": 0.1, "max": 0.9},
                "blur_radius": {"min": 1, "max": 9, "step": 2},
            },
        },
    }
    sweep = submit(client, body)
    assert sweep["total"] == 8
    runs = client.get(f"/v1/sweeps/{sweep['id']}/runs").json()["items"]
    assert all(0.1 <= r["assignment"]["strength"] <= 0.9 for r in runs)
    assert all(r["assignment"]["blur_radius"] in {1, 3, 5, 7, 9} for r in runs)


def test_another_teams_sweep_is_not_found(team_client: ClientFactory) -> None:
    owner, stranger = team_client(), team_client()
    sweep_id = submit(owner)["id"]
    assert stranger.get(f"/v1/sweeps/{sweep_id}").status_code == 404
    assert stranger.get(f"/v1/sweeps/{sweep_id}/runs").status_code == 404
    assert stranger.get("/v1/sweeps").json()["total"] == 0


def test_unknown_sweep_is_not_found(client: TestClient) -> None:
    response = client.get("/v1/sweeps/00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404
    assert "no sweep" in response.json()["detail"]
