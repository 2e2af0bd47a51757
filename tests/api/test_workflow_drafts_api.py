"""POST /v1/workflows/draft-contract: a contract drafted against the pool's node specs."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
OBJECT_INFO: dict[str, Any] = json.loads(
    (ROOT / "tests" / "fixtures" / "object_info.json").read_text(encoding="utf-8")
)
URL = "/v1/workflows/draft-contract"


class _Specs:
    def __init__(self, specs: Mapping[str, Any] | None) -> None:
        self._specs = specs

    def current(self) -> Mapping[str, Any] | None:
        return self._specs


@pytest.fixture
def pool(app: FastAPI) -> Iterator[Callable[[Mapping[str, Any] | None], None]]:
    """Sets what the pool's /object_info answers (None: no instance answers)."""
    # Starlette's State is not monkeypatch-friendly (its attributes live in a dict).
    real = app.state.node_specs

    def answer(specs: Mapping[str, Any] | None) -> None:
        app.state.node_specs = _Specs(specs)

    answer(OBJECT_INFO)
    yield answer
    app.state.node_specs = real


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@pytest.mark.usefixtures("pool")
def test_an_api_graph_gets_a_contract_and_itself_back(client: TestClient) -> None:
    graph = _load(ROOT / "workflows" / "sd15-hires-fix.api.json")
    response = client.post(URL, json={"graph": graph})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["graph"] == graph
    seed = body["contract"]["properties"]["seed"]
    assert seed["x-comfy"] == [{"node": "5", "input": "seed"}, {"node": "7", "input": "seed"}]


@pytest.mark.usefixtures("pool")
def test_a_ui_workflow_is_converted_then_drafted(client: TestClient) -> None:
    ui = _load(ROOT / "tests" / "fixtures" / "ui" / "sd15-txt2img.json")
    response = client.post(URL, json={"graph": ui})
    assert response.status_code == 200, response.text
    body = response.json()
    shipped = _load(ROOT / "workflows" / "sd15-txt2img.api.json")
    assert {k: v["inputs"] for k, v in body["graph"].items()} == {
        k: v["inputs"] for k, v in shipped.items()
    }
    assert body["contract"]["properties"]["lora_strength"]["default"] == 1.0


@pytest.mark.usefixtures("pool")
def test_an_unknown_node_class_is_422_naming_the_node(client: TestClient) -> None:
    graph = _load(ROOT / "workflows" / "demo-noise.api.json")
    graph["3"]["class_type"] = "FancyBlur"
    response = client.post(URL, json={"graph": graph})
    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert problem["loc"] == ["body", "graph", "3", "class_type"]
    assert problem["type"] == "unknown_node_class"
    assert "FancyBlur" in problem["msg"]


@pytest.mark.usefixtures("pool")
def test_a_group_node_in_a_ui_workflow_is_422(client: TestClient) -> None:
    ui = _load(ROOT / "tests" / "fixtures" / "ui" / "demo-noise.json")
    ui["extra"]["groupNodes"] = {"Blur twice": {}}
    ui["nodes"][2]["type"] = "workflow>Blur twice"
    response = client.post(URL, json={"graph": ui})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "graph", "nodes", 2, "type"]


def test_a_silent_pool_is_503_with_retry_after(
    client: TestClient, pool: Callable[[Mapping[str, Any] | None], None]
) -> None:
    pool(None)
    graph = _load(ROOT / "workflows" / "demo-noise.api.json")
    response = client.post(URL, json={"graph": graph})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "60"
    assert "object_info" in response.json()["detail"]


@pytest.mark.usefixtures("pool")
def test_a_graph_that_is_not_an_object_is_422(client: TestClient) -> None:
    response = client.post(URL, json={"graph": [1, 2]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "graph"]
