"""Registering workflows and their versions over HTTP: ownership, versions pinned by sweeps,
idempotent re-registration, and the checks a registration must pass."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db.models import Workflow as WorkflowRow
from app.db.models import WorkflowVersion
from app.main import create_app
from app.services import keys
from app.settings import Settings
from tests.api.conftest import ClientFactory, mint_key
from tests.conftest import REDIS_URL
from tests.support.standin_process import REPO_ROOT, launch

GRAPH: dict[str, Any] = json.loads((REPO_ROOT / "workflows/demo-noise.api.json").read_text())
CONTRACT: dict[str, Any] = json.loads((REPO_ROOT / "params/demo-noise.schema.json").read_text())


def unique_name() -> str:
    return f"noise-{uuid4().hex[:8]}"


def body(name: str | None = None, **changes: Any) -> dict[str, Any]:
    content: dict[str, Any] = {"graph": GRAPH, "contract": CONTRACT, **changes}
    return content if name is None else {"name": name, **content}


def blurrier_graph() -> dict[str, Any]:
    graph = copy.deepcopy(GRAPH)
    graph["3"]["inputs"]["sigma"] = 2.5
    return graph


def sweep(client: TestClient, name: str) -> dict[str, Any]:
    response = client.post(
        "/v1/sweeps", json={"workflow": name, "axes": [{"param": "seed", "values": [1, 2]}]}
    )
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_registered_workflow_is_the_teams_own_at_version_1(
    team_client: ClientFactory,
) -> None:
    owner, other = team_client(), team_client()
    name = unique_name()

    created = owner.post("/v1/workflows", json=body(name, description="my noise"))

    assert created.status_code == 201, created.text
    assert created.headers["Location"] == f"/v1/workflows/{name}"
    read = owner.get(f"/v1/workflows/{name}").json()
    assert (read["version"], read["scope"], read["description"]) == (1, "team", "my noise")
    assert len(read["hash"]) == 64
    assert {p["name"] for p in read["parameters"]} >= {"seed", "blur_radius"}
    listed = {w["name"]: w for w in owner.get("/v1/workflows").json()["items"]}
    assert listed[name]["scope"] == "team"
    assert listed["demo-noise"]["scope"] == "global"
    assert other.get(f"/v1/workflows/{name}").status_code == 404
    assert name not in {w["name"] for w in other.get("/v1/workflows").json()["items"]}


def test_each_sweep_pins_the_version_it_was_submitted_against(client: TestClient) -> None:
    name = unique_name()
    assert client.post("/v1/workflows", json=body(name)).status_code == 201
    first = sweep(client, name)

    put = client.put(f"/v1/workflows/{name}", json=body(graph=blurrier_graph()))
    second = sweep(client, name)

    assert put.status_code == 201, put.text
    assert put.json()["version"] == 2
    assert (first["workflow_version"], second["workflow_version"]) == (1, 2)
    assert second["workflow_hash"] == put.json()["hash"] != first["workflow_hash"]
    # The first sweep still runs version 1 after version 2 exists.
    assert client.get(f"/v1/sweeps/{first['id']}").json()["workflow_version"] == 1
    assert client.get(f"/v1/workflows/{name}").json()["version"] == 2


def test_putting_identical_content_returns_the_existing_version(client: TestClient) -> None:
    name = unique_name()
    created = client.post("/v1/workflows", json=body(name)).json()

    again = client.put(f"/v1/workflows/{name}", json=body())

    assert again.status_code == 200
    assert (again.json()["version"], again.json()["hash"]) == (1, created["hash"])
    history = client.get(f"/v1/workflows/{name}/versions").json()
    assert history["total"] == 1


def test_the_history_lists_versions_newest_first_in_pages(client: TestClient) -> None:
    name = unique_name()
    client.post("/v1/workflows", json=body(name))
    client.put(f"/v1/workflows/{name}", json=body(graph=blurrier_graph()))
    client.put(f"/v1/workflows/{name}", json=body(ui_graph={"nodes": [], "links": []}))

    page = client.get(f"/v1/workflows/{name}/versions", params={"limit": 2}).json()
    rest = client.get(f"/v1/workflows/{name}/versions", params={"offset": 2}).json()

    assert [v["version"] for v in page["items"]] == [3, 2]
    assert [v["version"] for v in rest["items"]] == [1]
    assert page["total"] == 3
    assert page["items"][0]["has_ui_graph"] is True
    assert page["items"][0]["created_by"].startswith("csk_")


def test_a_binding_to_a_missing_input_is_a_422_naming_the_contract_pointer(
    client: TestClient,
) -> None:
    contract = copy.deepcopy(CONTRACT)
    contract["properties"]["seed"]["x-comfy"] = [{"node": "2", "input": "sed"}]

    response = client.post("/v1/workflows", json=body(unique_name(), contract=contract))

    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["loc"][:6] == ["body", "contract", "properties", "seed", "x-comfy", 0]
    assert "sed" in problem["msg"]


def test_a_link_to_a_missing_node_is_a_422_naming_the_graph_pointer(client: TestClient) -> None:
    graph = copy.deepcopy(GRAPH)
    graph["3"]["inputs"]["image"] = ["9", 0]

    response = client.post("/v1/workflows", json=body(unique_name(), graph=graph))

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "graph", "3", "inputs", "image"]


def test_a_missing_contract_without_a_pool_is_a_422_naming_it(client: TestClient) -> None:
    response = client.post("/v1/workflows", json={"name": unique_name(), "graph": GRAPH})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "contract"]
    assert response.json()["detail"][0]["type"] == "missing"
    assert "/object_info" in response.json()["detail"][0]["msg"]


def test_a_ui_format_graph_without_a_pool_is_a_422_saying_why(client: TestClient) -> None:
    ui = {"nodes": [{"id": 1, "type": "EmptyImage"}], "links": []}
    response = client.post("/v1/workflows", json=body(unique_name(), graph=ui))
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert (problem["loc"], problem["type"]) == (["body", "graph"], "pool_unavailable")


def test_a_graph_above_the_node_limit_is_refused(client: TestClient) -> None:
    graph = {**GRAPH}
    graph.update(
        {f"x{n}": {"class_type": "EmptyImage", "inputs": {}} for n in range(2001 - len(GRAPH))}
    )
    response = client.post("/v1/workflows", json=body(unique_name(), graph=graph))
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "graph"]
    assert "2001 nodes" in response.json()["detail"][0]["msg"]


def test_nul_in_a_graph_string_is_a_422_not_a_failed_insert(client: TestClient) -> None:
    graph = copy.deepcopy(GRAPH)
    graph["4"]["inputs"]["filename_prefix"] = "a\x00b"
    response = client.post("/v1/workflows", json=body(unique_name(), graph=graph))
    assert response.status_code == 422


def test_a_name_taken_by_a_global_workflow_is_a_409_naming_it(client: TestClient) -> None:
    response = client.post("/v1/workflows", json=body("demo-noise"))
    assert response.status_code == 409
    assert "demo-noise" in response.json()["detail"]


def test_registering_the_same_name_twice_is_a_409(client: TestClient) -> None:
    name = unique_name()
    client.post("/v1/workflows", json=body(name))
    assert client.post("/v1/workflows", json=body(name)).status_code == 409


def test_a_member_key_may_not_register_or_change_a_global_workflow(client: TestClient) -> None:
    created = client.post("/v1/workflows", json={**body(unique_name()), "global": True})
    changed = client.put("/v1/workflows/demo-noise", json=body(graph=blurrier_graph()))
    assert created.status_code == 403
    assert changed.status_code == 403
    assert "admin" in created.json()["detail"]


def test_an_admin_key_registers_a_global_workflow_every_team_sees(
    app: FastAPI, team_client: ClientFactory
) -> None:
    with app.state.session_factory() as session:
        admin_key = keys.create_key(session, f"ops-{uuid4().hex[:6]}", role="admin").plaintext
    name = unique_name()
    with TestClient(app, headers={"Authorization": f"Bearer {admin_key}"}) as admin:
        created = admin.post("/v1/workflows", json={**body(name), "global": True})
    assert created.status_code == 201, created.text
    assert created.json()["scope"] == "global"
    assert team_client().get(f"/v1/workflows/{name}").json()["scope"] == "global"
    assert team_client().post("/v1/workflows", json=body(name)).status_code == 409


@pytest.fixture(scope="module")
def pool_app(
    database_url: str, queue_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    """An app whose pool is one stand-in instance, so registrations meet its /object_info."""
    standin = launch(tmp_path_factory.mktemp("standin"))
    app = create_app(
        Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue_name,
            comfy_instances=standin.base_url,
        )
    )
    yield app
    app.state.engine.dispose()
    standin.stop()


def test_an_unknown_node_class_in_the_pool_is_a_422_naming_the_node(pool_app: FastAPI) -> None:
    graph = copy.deepcopy(GRAPH)
    graph["3"]["class_type"] = "ImageBlurPlus"
    headers = {"Authorization": f"Bearer {mint_key(pool_app, 'pooled')}"}
    with TestClient(pool_app, headers=headers) as client:
        response = client.post("/v1/workflows", json=body(unique_name(), graph=graph))
        known = client.post("/v1/workflows", json=body(unique_name()))
    assert response.status_code == 422
    problem = response.json()["detail"][0]
    assert problem["loc"] == ["body", "graph", "3", "class_type"]
    assert problem["type"] == "missing_node_type"
    assert "ImageBlurPlus" in problem["msg"]
    assert known.status_code == 201


def test_a_literal_the_pool_refuses_is_a_422_naming_node_and_input(pool_app: FastAPI) -> None:
    graph = copy.deepcopy(GRAPH)
    graph["4"]["inputs"]["filename_prefix"] = 7  # a STRING input
    headers = {"Authorization": f"Bearer {mint_key(pool_app, 'pooled')}"}
    with TestClient(pool_app, headers=headers) as client:
        response = client.post("/v1/workflows", json=body(unique_name(), graph=graph))
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == [
        "body",
        "graph",
        "4",
        "inputs",
        "filename_prefix",
    ]


@pytest.mark.parametrize("name", ["\x00", "a\x00b"])
def test_a_sweep_of_an_impossible_workflow_name_is_unknown_not_a_server_error(
    client: TestClient, name: str
) -> None:
    response = client.post("/v1/sweeps", json={"workflow": name})
    assert response.status_code == 422
    assert response.json()["detail"][0]["type"] == "unknown_workflow"
    assert client.get("/v1/workflows/%00").status_code == 404
    assert client.put("/v1/workflows/%00", json=body()).status_code == 404


def test_a_missing_contract_is_drafted_from_the_pools_specs(pool_app: FastAPI) -> None:
    headers = {"Authorization": f"Bearer {mint_key(pool_app, 'drafting')}"}
    name = unique_name()
    with TestClient(pool_app, headers=headers) as client:
        created = client.post("/v1/workflows", json={"name": name, "graph": GRAPH})
        read = client.get(f"/v1/workflows/{name}").json()
        swept = client.post(
            "/v1/sweeps", json={"workflow": name, "axes": [{"param": "seed", "values": [1, 2]}]}
        )
    assert created.status_code == 201, created.text
    drafted = {p["name"] for p in read["parameters"]}
    assert {"seed", "blur_radius"} <= drafted
    assert "filename_prefix" not in drafted
    assert swept.status_code == 201, swept.text


def test_a_ui_export_registers_as_its_api_graph_and_keeps_its_source(pool_app: FastAPI) -> None:
    ui = json.loads((REPO_ROOT / "tests/fixtures/ui/demo-noise.json").read_text())
    headers = {"Authorization": f"Bearer {mint_key(pool_app, 'importing')}"}
    name = unique_name()
    with TestClient(pool_app, headers=headers) as client:
        created = client.post("/v1/workflows", json={"name": name, "graph": ui})
    assert created.status_code == 201, created.text
    with pool_app.state.session_factory() as session:
        version = session.scalars(
            select(WorkflowVersion).join(WorkflowRow).where(WorkflowRow.name == name)
        ).one()
    assert version.ui_graph == ui
    graph = version.graph
    assert {n: graph[n]["class_type"] for n in graph} == {n: GRAPH[n]["class_type"] for n in GRAPH}
