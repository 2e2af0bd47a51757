"""Wildcard lists over HTTP, and sweeps whose prompts use them and template variables."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db.models import Sweep
from app.domain.grid_dimensions import sweep_plan_from_record
from app.domain.grid_layout import plan_grid
from tests.api.conftest import ClientFactory

TEXT = {"Content-Type": "text/plain; charset=utf-8"}
ANIMALS = "# three animals\ncat\n\ndog\n  red fox  \n"


def put_list(client: TestClient, name: str, text: str) -> Any:
    return client.put(f"/v1/wildcards/{name}", content=text.encode(), headers=TEXT)


def test_a_list_is_created_read_listed_replaced_and_deleted(client: TestClient) -> None:
    created = put_list(client, "animals", ANIMALS)
    assert created.status_code == 201, created.text
    assert created.json()["count"] == 3
    assert client.get("/v1/wildcards/animals").json()["entries"] == ["cat", "dog", "red fox"]
    replaced = put_list(client, "animals", "owl\nbat\n")
    assert (replaced.status_code, replaced.json()["count"]) == (200, 2)
    put_list(client, "styles", "oil\n")
    listing = client.get("/v1/wildcards").json()
    assert [(i["name"], i["count"]) for i in listing["items"]] == [("animals", 2), ("styles", 1)]
    assert client.delete("/v1/wildcards/animals").status_code == 204
    assert client.get("/v1/wildcards/animals").status_code == 404
    assert client.delete("/v1/wildcards/animals").status_code == 404


def test_lists_are_private_to_their_team(team_client: ClientFactory) -> None:
    owner, other = team_client(), team_client()
    put_list(owner, "animals", ANIMALS)
    assert other.get("/v1/wildcards/animals").status_code == 404
    assert other.get("/v1/wildcards").json()["items"] == []


def test_a_bad_list_is_a_422_naming_the_line(client: TestClient) -> None:
    response = put_list(client, "animals", "cat\ndog\ncat\n")
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["body"]
    assert problem["msg"] == "line 3: 'cat' repeats line 1"


def test_more_than_ten_thousand_entries_is_refused(client: TestClient) -> None:
    response = put_list(client, "many", "\n".join(f"e{i}" for i in range(10_001)))
    assert response.status_code == 422
    assert "more than 10000 entries" in response.json()["detail"][0]["msg"]


def test_a_bad_name_or_media_type_is_refused(client: TestClient) -> None:
    assert put_list(client, "Animals", "cat").status_code == 422
    double = put_list(client, "a__b", "cat")
    assert (double.status_code, double.json()["detail"][0]["loc"]) == (422, ["path", "name"])
    as_json = client.put("/v1/wildcards/animals", json="cat")
    assert as_json.status_code == 415


def test_a_wildcard_and_a_template_axis_make_six_runs_labelled_by_the_words(
    app: FastAPI, client: TestClient
) -> None:
    put_list(client, "animals", ANIMALS)
    body = {
        "workflow": "sd15-txt2img",
        "base": {"prompt": "a __animals__ as an {style}, {{best}} quality"},
        "axes": [{"param": "style", "values": "oil painting, ink sketch"}],
    }
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = response.json()
    assert sweep["total"] == 6
    runs = client.get(f"/v1/sweeps/{sweep['id']}/runs", params={"limit": 10}).json()["items"]
    assignments = [run["assignment"] for run in sorted(runs, key=lambda r: r["index"])]
    words = [(a["animals"], a["style"]) for a in assignments]
    assert words == [
        ("cat", "oil painting"),
        ("cat", "ink sketch"),
        ("dog", "oil painting"),
        ("dog", "ink sketch"),
        ("red fox", "oil painting"),
        ("red fox", "ink sketch"),
    ]
    assert [a["prompt"] for a in assignments] == [
        f"a {animal} as an {style}, {{best}} quality" for animal, style in words
    ]

    # Replacing the list later changes nothing for this sweep: its plan holds the entries.
    put_list(client, "animals", "owl\n")
    with app.state.session_factory() as session:
        stored = session.get(Sweep, UUID(sweep["id"]))
        assert stored is not None
        plan = sweep_plan_from_record(stored.plan)
    [page] = plan_grid(plan, sweep["total"]).pages
    labels = {(label.role, label.full) for label in page.labels}
    assert {("column", "oil painting"), ("column", "ink sketch")} <= labels
    assert {("row", "cat"), ("row", "dog"), ("row", "red fox")} <= labels
    assert {("axis", "style"), ("axis", "animals")} <= labels


def test_a_sweep_naming_a_list_the_team_lacks_is_a_422(client: TestClient) -> None:
    body = {"workflow": "sd15-txt2img", "base": {"prompt": "a __birds__"}}
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert (problem["loc"], problem["type"], problem["input"]) == (
        ["body", "base", "prompt"],
        "unknown_wildcard",
        "__birds__",
    )
