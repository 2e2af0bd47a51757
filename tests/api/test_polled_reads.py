"""The routes clients poll answer from as few queries and as little work as they can: a
status read is the sweep (its key remembered, app.api.callers), and its answer is the same
document either way."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.callers import CallerCache
from app.api.schemas.sweeps import SweepRead
from tests.api.test_sweeps_api import submit


def statements_of(app: FastAPI, client: TestClient, path: str) -> tuple[list[str], Any]:
    seen: list[str] = []

    def note(*args: Any) -> None:
        seen.append(str(args[2]))

    sa.event.listen(app.state.engine, "before_cursor_execute", note)
    try:
        response = client.get(path)
    finally:
        sa.event.remove(app.state.engine, "before_cursor_execute", note)
    assert response.status_code == 200, response.text
    return seen, response.json()


def test_a_status_read_is_one_query_the_sweep_with_its_version(
    app: FastAPI, client: TestClient
) -> None:
    sweep = submit(client)
    path = f"/v1/sweeps/{sweep['id']}"
    client.get(path).raise_for_status()  # the key's last use is recorded: a write, once
    statements, body = statements_of(app, client, path)  # the key is remembered
    assert len(statements) == 1, statements
    assert "workflow_versions" in statements[0]  # the pinned version rides along
    assert body["workflow_version"] is not None
    assert body["workflow_hash"]


def test_a_status_read_with_its_key_forgotten_looks_the_key_up_first(
    app: FastAPI, client: TestClient
) -> None:
    sweep = submit(client)
    path = f"/v1/sweeps/{sweep['id']}"
    client.get(path).raise_for_status()
    kept = app.state.callers
    app.state.callers = CallerCache()
    try:
        statements, _ = statements_of(app, client, path)
    finally:
        app.state.callers = kept
    assert len(statements) == 2, statements
    assert "api_keys" in statements[0]
    assert "workflow_versions" in statements[1]


def test_a_status_read_answers_the_documented_shape(client: TestClient) -> None:
    sweep = submit(client)
    body = client.get(f"/v1/sweeps/{sweep['id']}").json()
    assert SweepRead.model_validate(body).model_dump(mode="json") == body
    # As submitted, counts moving on; only the submission answer carries the sweep's webhook
    # (its secret is shown once).
    submitted = {key: value for key, value in sweep.items() if key != "webhook"}
    assert body == {**submitted, "counts": body["counts"]}


def test_polled_reads_leave_no_connection_checked_out(app: FastAPI, client: TestClient) -> None:
    sweep = submit(client)
    for path in (f"/v1/sweeps/{sweep['id']}", f"/v1/sweeps/{sweep['id']}/runs", "/v1/workflows"):
        client.get(path).raise_for_status()
        assert app.state.engine.pool.checkedout() == 0, path
    assert client.get(f"/v1/sweeps/{sweep['id']}x").status_code == 422
    missing = "/v1/sweeps/00000000-0000-0000-0000-000000000000"
    assert client.get(missing).status_code == 404
    assert app.state.engine.pool.checkedout() == 0
