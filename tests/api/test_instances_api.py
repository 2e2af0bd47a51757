"""The instance pool over HTTP: admin-only listing, drain and undrain; sweeps that need
instance tags, refused at submission when no configured instance has them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.services import keys
from app.settings import Settings
from tests.support.standin_process import REPO_ROOT

# Nothing listens there: fetching node specs fails at once and submission goes on without.
PLAIN, SDXL = "http://127.0.0.1:9", "http://127.0.0.2:9"
GRAPH: dict[str, Any] = json.loads((REPO_ROOT / "workflows/demo-noise.api.json").read_text())
CONTRACT: dict[str, Any] = json.loads((REPO_ROOT / "params/demo-noise.schema.json").read_text())
NOISE: dict[str, Any] = {"workflow": "demo-noise", "axes": [{"param": "seed", "values": [1]}]}


@pytest.fixture(scope="module")
def pool_app(settings: Settings) -> Iterator[FastAPI]:
    tagged = settings.model_copy(update={"comfy_instances": f"{PLAIN}, {SDXL}#sdxl+fast"})
    application = create_app(tagged)
    yield application
    application.state.engine.dispose()


def client_of(app: FastAPI, role: str) -> TestClient:
    with app.state.session_factory() as session:
        key = keys.create_key(session, f"team-{uuid4().hex[:8]}", role=role).plaintext
    return TestClient(app, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def admin(pool_app: FastAPI) -> Iterator[TestClient]:
    with client_of(pool_app, "admin") as client:
        yield client


@pytest.fixture
def member(pool_app: FastAPI) -> Iterator[TestClient]:
    with client_of(pool_app, "member") as client:
        yield client


def ids(admin: TestClient) -> dict[str, str]:
    return {i["url"]: i["id"] for i in admin.get("/v1/instances").json()}


def test_an_admin_sees_every_configured_instance_with_its_state(admin: TestClient) -> None:
    listed = admin.get("/v1/instances")
    assert listed.status_code == 200, listed.text
    by_url = {i["url"]: i for i in listed.json()}
    assert set(by_url) == {PLAIN, SDXL}
    assert by_url[SDXL]["tags"] == ["sdxl", "fast"]
    assert by_url[PLAIN]["running_prompts"] == 0
    assert by_url[PLAIN]["benched_until"] is None
    assert len({i["id"] for i in listed.json()}) == 2


def test_drain_and_undrain_flip_the_instance_and_report_it(admin: TestClient) -> None:
    instance = ids(admin)[SDXL]
    drained = admin.post(f"/v1/instances/{instance}/drain")
    assert drained.status_code == 200, drained.text
    assert drained.json()["drained"] is True
    assert {i["url"]: i["drained"] for i in admin.get("/v1/instances").json()}[SDXL] is True
    undrained = admin.post(f"/v1/instances/{instance}/undrain")
    assert undrained.status_code == 200
    assert undrained.json()["drained"] is False


def test_an_unknown_instance_id_is_404(admin: TestClient) -> None:
    assert admin.post("/v1/instances/0123456789ab/drain").status_code == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/instances"), ("POST", "/drain"), ("POST", "/undrain")],
)
def test_a_member_key_may_not_see_or_drain_the_pool(
    admin: TestClient, member: TestClient, method: str, path: str
) -> None:
    if path != "/v1/instances":
        path = f"/v1/instances/{ids(admin)[PLAIN]}{path}"
    refused = member.request(method, path)
    assert refused.status_code == 403
    assert "admin" in refused.json()["detail"]


def test_a_sweep_needing_a_tag_some_instance_has_is_accepted(member: TestClient) -> None:
    created = member.post("/v1/sweeps", json={**NOISE, "requires": ["sdxl", "fast"]})
    assert created.status_code == 201, created.text
    assert created.json()["requires"] == ["fast", "sdxl"]


def test_a_sweep_needing_a_tag_no_instance_has_is_422_naming_it(member: TestClient) -> None:
    refused = member.post("/v1/sweeps", json={**NOISE, "requires": ["sdxl", "48gb"]})
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "requires"]
    assert problem["type"] == "no_instance_with_tags"
    assert "48gb" in problem["msg"]
    assert problem["input"] == ["48gb"]


def test_a_bad_tag_in_a_request_is_422_naming_the_field(member: TestClient) -> None:
    refused = member.post("/v1/sweeps", json={**NOISE, "requires": ["sd xl"]})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "requires", 0]


def test_a_workflow_whose_contract_needs_a_tag_no_instance_has_is_refused_at_submission(
    member: TestClient,
) -> None:
    name = f"noise-{uuid4().hex[:8]}"
    contract = {**CONTRACT, "x-comfy-requires": ["h100"]}
    registered = member.post(
        "/v1/workflows", json={"name": name, "graph": GRAPH, "contract": contract}
    )
    assert registered.status_code == 201, registered.text
    refused = member.post("/v1/sweeps", json={**NOISE, "workflow": name})
    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "workflow"]
    assert "h100" in problem["msg"]
