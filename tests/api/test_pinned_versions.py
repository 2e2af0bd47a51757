"""A sweep runs the version it pinned: what a worker reads for a sweep submitted before a new
version still is the old graph, so a retry, a resumed run or a replay of it is unchanged."""

from __future__ import annotations

from uuid import UUID

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.media.storage import Storage
from tests.api.test_workflow_registry_api import GRAPH, blurrier_graph, body, sweep, unique_name
from workers.comfy_session import ComfySession
from workers.runtime import Runtime
from workers.workflows import pinned_workflow


def test_a_sweep_submitted_before_a_new_version_still_runs_its_own(
    app: FastAPI, client: TestClient
) -> None:
    runtime = Runtime(
        settings=app.state.settings,
        sessions=app.state.session_factory,
        storage=Storage(app.state.settings.data_dir),
        celery=app.state.celery,
        comfy=ComfySession(),
    )
    name = unique_name()
    assert client.post("/v1/workflows", json=body(name)).status_code == 201
    first = sweep(client, name)
    assert client.put(f"/v1/workflows/{name}", json=body(graph=blurrier_graph())).status_code == 201
    second = sweep(client, name)

    assert pinned_workflow(runtime, UUID(first["id"])).workflow.graph == GRAPH
    assert pinned_workflow(runtime, UUID(second["id"])).workflow.graph == blurrier_graph()
