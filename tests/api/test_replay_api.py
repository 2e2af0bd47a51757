"""Replaying a sweep: a new sweep with exactly its source's runs, in the same order, random
seeds and sampled points included, optionally with shared values overridden."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.db.models import Run
from tests.api.conftest import ClientFactory

RANDOM_SEEDS: dict[str, Any] = {
    "workflow": "demo-noise",
    "base": {"width": 64},
    "axes": [
        {"param": "blur_radius", "values": "1-5 (+2)"},
        {"param": "strength", "values": [0.2, 0.8]},
    ],
    "seeds": {"count": 3, "random": True},
}
SAMPLED: dict[str, Any] = {
    "workflow": "demo-noise",
    "axes": [{"param": "blur_radius", "values": [1, 9]}],
    "sampling": {
        "strategy": "lhs",
        "samples": 4,
        "ranges": {"strength": {"min": 0, "max": 1}, "sigma": {"min": 0.5, "max": 5}},
    },
}


def submit(client: TestClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def replay(client: TestClient, sweep_id: str, body: dict[str, Any] | None = None) -> Any:
    return client.post(f"/v1/sweeps/{sweep_id}/replay", json=body)


def assignments(client: TestClient, sweep_id: str) -> list[dict[str, Any]]:
    page = client.get(f"/v1/sweeps/{sweep_id}/runs", params={"limit": 500}).json()
    assert [run["index"] for run in page["items"]] == list(range(page["total"]))
    return [run["assignment"] for run in page["items"]]


def stored_runs(app: FastAPI, sweep_id: str) -> list[tuple[int, dict[str, Any], int, str]]:
    """Each run as stored: index, own values, place in the dispatch order, model key."""
    session: Session
    with app.state.session_factory() as session:
        query = sa.select(Run).where(Run.sweep_id == UUID(sweep_id)).order_by(Run.index)
        runs = session.scalars(query)
        return [(r.index, r.own_values, r.dispatch_order, r.model_key) for r in runs]


@pytest.mark.parametrize("body", [RANDOM_SEEDS, SAMPLED], ids=["random seeds", "sampling"])
def test_a_replay_has_its_sources_runs_in_the_same_order(
    app: FastAPI, client: TestClient, body: dict[str, Any]
) -> None:
    source = submit(client, body)
    answer = replay(client, source["id"])
    assert answer.status_code == 201, answer.text
    copy = answer.json()
    assert copy["id"] != source["id"]
    assert answer.headers["Location"] == f"/v1/sweeps/{copy['id']}"
    assert copy["source_sweep_id"] == source["id"]
    assert copy["status"] == "pending"
    assert (copy["total"], copy["seeds"], copy["axes"]) == (
        source["total"],
        source["seeds"],
        source["axes"],
    )
    assert copy["workflow_version"] == source["workflow_version"]
    assert stored_runs(app, copy["id"]) == stored_runs(app, source["id"])
    assert assignments(client, copy["id"]) == assignments(client, source["id"])
    shown = client.get(f"/v1/sweeps/{copy['id']}").json()
    assert shown["source_sweep_id"] == source["id"]
    assert client.get(f"/v1/sweeps/{source['id']}").json()["source_sweep_id"] is None


def test_the_random_draws_are_reused_not_drawn_again(client: TestClient) -> None:
    source = submit(client, RANDOM_SEEDS)
    resubmitted = submit(client, RANDOM_SEEDS)
    copy = replay(client, source["id"]).json()
    assert copy["seeds"] == source["seeds"] != resubmitted["seeds"]
    sampled = submit(client, SAMPLED)
    points = {tuple(sorted(a.items())) for a in assignments(client, sampled["id"])}
    again = replay(client, sampled["id"]).json()
    assert {tuple(sorted(a.items())) for a in assignments(client, again["id"])} == points


def test_overrides_change_the_shared_values_and_nothing_else(client: TestClient) -> None:
    source = submit(client, RANDOM_SEEDS)
    answer = replay(client, source["id"], {"base": {"width": 128, "sigma": 2.5}})
    assert answer.status_code == 201, answer.text
    copy = answer.json()
    assert copy["fixed"] == {**source["fixed"], "width": 128, "sigma": 2.5}
    expected = [{**a, "width": 128, "sigma": 2.5} for a in assignments(client, source["id"])]
    assert assignments(client, copy["id"]) == expected


@pytest.mark.parametrize(
    ("base", "name", "type_"),
    [
        ({"blur_radius": 3}, "blur_radius", "parameter_conflict"),
        ({"seed": 7}, "seed", "parameter_conflict"),
        ({"cfg": 7}, "cfg", "unknown_parameter"),
        ({"width": 99_999}, "width", "value_bigger_than_max"),
    ],
)
def test_a_bad_override_is_a_422_naming_it_and_nothing_is_stored(
    client: TestClient, base: dict[str, Any], name: str, type_: str
) -> None:
    source = submit(client, RANDOM_SEEDS)
    refused = replay(client, source["id"], {"base": base})
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["detail"]
    assert (problem["loc"], problem["type"]) == (["body", "base", name], type_)
    assert client.get("/v1/sweeps").json()["total"] == 1


def test_a_sampled_parameter_cannot_be_overridden(client: TestClient) -> None:
    source = submit(client, SAMPLED)
    refused = replay(client, source["id"], {"base": {"sigma": 1.0}})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "base", "sigma"]


def test_another_teams_sweep_is_not_found(team_client: ClientFactory) -> None:
    owner, other = team_client(), team_client()
    source = submit(owner, RANDOM_SEEDS)
    assert replay(other, source["id"]).status_code == 404
    assert other.get("/v1/sweeps").json()["total"] == 0


def test_a_replay_uses_the_wildcard_entries_of_its_source(client: TestClient) -> None:
    text = {"Content-Type": "text/plain; charset=utf-8"}
    client.put("/v1/wildcards/animals", content=b"cat\ndog\n", headers=text)
    body = {"workflow": "sd15-txt2img", "base": {"prompt": "a __animals__ in the rain"}}
    source = submit(client, body)
    client.put("/v1/wildcards/animals", content=b"owl\n", headers=text)
    copy = replay(client, source["id"]).json()
    prompts = [a["prompt"] for a in assignments(client, copy["id"])]
    assert prompts == ["a cat in the rain", "a dog in the rain"]


def test_a_plain_prompt_replaces_a_template(client: TestClient) -> None:
    body = {
        "workflow": "sd15-txt2img",
        "base": {"prompt": "a {animal}, {{best}}"},
        "axes": [{"param": "animal", "values": ["cat", "dog"]}],
    }
    source = submit(client, body)
    copy = replay(client, source["id"], {"base": {"prompt": "a lamp, {{best}}"}}).json()
    prompts = [a["prompt"] for a in assignments(client, copy["id"])]
    assert prompts == ["a lamp, {best}", "a lamp, {best}"]
    templated = replay(client, source["id"], {"base": {"prompt": "a {animal} at night"}})
    assert templated.status_code == 422
    assert templated.json()["detail"][0]["type"] == "template_in_override"


def test_a_replay_goes_through_the_teams_caps(app: FastAPI, team_client: ClientFactory) -> None:
    client = team_client()
    source = submit(client, RANDOM_SEEDS)
    with app.state.session_factory() as session:
        session.execute(
            sa.text("UPDATE teams SET max_runs_per_sweep = 2 WHERE id = "
                    "(SELECT team_id FROM sweeps WHERE id = :id)"),
            {"id": UUID(source["id"])},
        )  # fmt: skip
        session.commit()
    refused = replay(client, source["id"])
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["type"] == "above_max_runs_per_sweep"


def test_a_replay_under_an_idempotency_key_is_made_once(client: TestClient) -> None:
    source = submit(client, RANDOM_SEEDS)
    headers = {"Idempotency-Key": "replay-once"}
    first = client.post(f"/v1/sweeps/{source['id']}/replay", headers=headers)
    again = client.post(f"/v1/sweeps/{source['id']}/replay", headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    assert client.get("/v1/sweeps").json()["total"] == 2
