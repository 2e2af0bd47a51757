"""Workflows registered through the API while a worker runs: the worker, started before the
registration, runs each sweep with exactly the version the sweep pinned, without a restart,
and its PNGs carry the UI-format source with the run's values."""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from PIL import Image, PngImagePlugin

from tests.integration.conftest import System, wait_for_sweep
from tests.support.standin_process import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

GRAPH: dict[str, Any] = json.loads((REPO_ROOT / "workflows/demo-noise.api.json").read_text())
CONTRACT: dict[str, Any] = json.loads((REPO_ROOT / "params/demo-noise.schema.json").read_text())
# The same workflow as ComfyUI's "Save" writes it, widget values in object_info input order.
UI_GRAPH: dict[str, Any] = {
    "last_node_id": 4,
    "last_link_id": 3,
    "nodes": [
        {"id": 1, "type": "EmptyImage", "widgets_values": [512, 512, 1, 0]},
        {"id": 2, "type": "ImageAddNoise", "widgets_values": [0, "randomize", 0.5]},
        {"id": 3, "type": "ImageBlur", "widgets_values": [1, 1.0]},
        {"id": 4, "type": "SaveImage", "widgets_values": ["comfy-sweep/demo-noise"]},
    ],
    "links": [[1, 1, 0, 2, 0, "IMAGE"], [2, 2, 0, 3, 0, "IMAGE"], [3, 3, 0, 4, 0, "IMAGE"]],
    "version": 0.4,
}


def run_to_end(api: httpx.Client, system: System, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep = wait_for_sweep(api, response.json()["id"], system)
    assert sweep["status"] == "succeeded", system.logs()
    return sweep


def png_text(api: httpx.Client, sweep_id: str) -> dict[str, str]:
    run = api.get(f"/v1/sweeps/{sweep_id}/runs/0").json()
    content = api.get(run["outputs"][0]["url"]).content
    with Image.open(io.BytesIO(content)) as image:
        assert isinstance(image, PngImagePlugin.PngImageFile)
        return dict(image.text)


def test_a_running_worker_runs_each_registered_version_without_restart(
    system_factory: Callable[..., System], api_for: Callable[[System], httpx.Client]
) -> None:
    system = system_factory()
    api = api_for(system)
    small = {"width": 32, "height": 32}
    # The worker is up and has run a shipped workflow before anything is registered.
    run_to_end(api, system, {"workflow": "demo-noise", "base": small})

    created = api.post(
        "/v1/workflows",
        json={"name": "my-noise", "graph": GRAPH, "contract": CONTRACT, "ui_graph": UI_GRAPH},
    )
    assert created.status_code == 201, created.text
    first = run_to_end(
        api, system, {"workflow": "my-noise", "base": {**small, "seed": 4242, "sigma": 3.0}}
    )
    blurrier = copy.deepcopy(GRAPH)
    blurrier["4"]["inputs"]["filename_prefix"] = "version-two"
    contract = copy.deepcopy(CONTRACT)
    del contract["properties"]["sigma"]  # v2 fixes sigma in the graph
    blurrier["3"]["inputs"]["sigma"] = 2.5
    put = api.put("/v1/workflows/my-noise", json={"graph": blurrier, "contract": contract})
    assert put.status_code == 201, put.text
    second = run_to_end(api, system, {"workflow": "my-noise", "base": small})

    assert (first["workflow_version"], second["workflow_version"]) == (1, 2)
    first_prompt = json.loads(png_text(api, first["id"])["prompt"])
    second_prompt = json.loads(png_text(api, second["id"])["prompt"])
    assert first_prompt["3"]["inputs"]["sigma"] == 3.0
    assert second_prompt["3"]["inputs"]["sigma"] == 2.5

    # Version 1 had a UI source: its output reloads in ComfyUI with the run's own values.
    workflow = json.loads(png_text(api, first["id"])["workflow"])
    widgets = {node["id"]: node["widgets_values"] for node in workflow["nodes"]}
    assert widgets[1] == [32, 32, 1, 0]
    assert widgets[2] == [4242, "randomize", 0.5]
    assert widgets[3] == [1, 3.0]
    assert "workflow" not in png_text(api, second["id"])
