"""Every way a sweep request is refused: 422 naming the field, the value and the rule,
and nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings
from tests.api.conftest import mint_key
from tests.conftest import REDIS_URL


def demo(*axes: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"workflow": "demo-noise", "axes": list(axes), **extra}


REJECTIONS: list[tuple[str, dict[str, Any], list[str | int], str]] = [
    ("unknown workflow", {"workflow": "nope"}, ["body", "workflow"], "unknown_workflow"),
    (
        "unknown base parameter",
        demo(base={"cfg": 7}),
        ["body", "base", "cfg"],
        "unknown_parameter",
    ),
    (
        "unknown axis parameter",
        demo({"param": "cfg", "values": "1-3"}),
        ["body", "axes", 0, "param"],
        "unknown_parameter",
    ),
    (
        "value above the maximum in a list",
        demo({"param": "strength", "values": [0.5, 1.5]}),
        ["body", "axes", 0, "values", 1],
        "value_bigger_than_max",
    ),
    (
        "range below the minimum",
        demo({"param": "blur_radius", "values": "0-3"}),
        ["body", "axes", 0, "values"],
        "value_smaller_than_min",
    ),
    (
        "base value of the wrong type",
        demo(base={"width": "wide"}),
        ["body", "base", "width"],
        "invalid_input_type",
    ),
    (
        "empty axis",
        demo({"param": "strength", "values": []}),
        ["body", "axes", 0, "values"],
        "empty_axis",
    ),
    (
        "a parameter on two axes",
        demo({"param": "strength", "values": [0.1]}, {"param": "strength", "values": [0.2]}),
        ["body", "axes", 1, "param"],
        "duplicate_axis",
    ),
    (
        "step away from the end",
        demo({"param": "blur_radius", "values": "1-5 (-1)"}),
        ["body", "axes", 0, "values"],
        "invalid_range_step",
    ),
    (
        "a range too long to expand",
        demo({"param": "seed", "values": "1-1000000000"}),
        ["body", "axes", 0, "values"],
        "too_many_values",
    ),
    (
        "too many runs in all",
        demo({"param": "seed", "values": "1-200"}, {"param": "width", "values": "8-800 (+8)"}),
        ["body", "axes"],
        "too_many_runs",
    ),
    (
        "a parameter in base and on an axis",
        demo({"param": "width", "values": [64, 128]}, base={"width": 256}),
        ["body", "axes", 0, "param"],
        "parameter_conflict",
    ),
    (
        "sampling an unknown parameter",
        demo(sampling={"strategy": "lhs", "samples": 4, "ranges": {"cfg": {"min": 1, "max": 2}}}),
        ["body", "sampling", "ranges", "cfg"],
        "unknown_parameter",
    ),
    (
        "seeds with neither start nor random",
        demo(seeds={"count": 2}),
        ["body", "seeds"],
        "value_error",
    ),
]


@pytest.mark.parametrize(
    ("body", "loc", "rule"), [r[1:] for r in REJECTIONS], ids=[r[0] for r in REJECTIONS]
)
def test_rejection_names_the_field_and_the_rule_and_stores_nothing(
    client: TestClient, body: dict[str, Any], loc: list[str | int], rule: str
) -> None:
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert {"loc": loc, "type": rule} in [{"loc": p["loc"], "type": p["type"]} for p in problems]
    assert all(p["msg"] for p in problems)
    assert client.get("/v1/sweeps").json()["total"] == 0


def test_out_of_bounds_problem_carries_the_offending_value(client: TestClient) -> None:
    response = client.post(
        "/v1/sweeps", json=demo({"param": "blur_radius", "values": "28-34 (+3)"})
    )
    problem = response.json()["detail"][0]
    assert problem["input"] == 34
    assert "blur_radius" in problem["msg"]


def test_a_range_past_the_maximum_is_one_problem_not_one_per_value(client: TestClient) -> None:
    response = client.post("/v1/sweeps", json=demo({"param": "blur_radius", "values": "1-100"}))
    assert response.status_code == 422
    assert response.json()["detail"] == [
        {
            "loc": ["body", "axes", 0, "values"],
            "type": "value_bigger_than_max",
            "msg": "blur_radius 32 is above the maximum 31 (and 68 more values of this axis)",
            "input": 32,
        }
    ]


def test_every_problem_is_reported_at_once(client: TestClient) -> None:
    body = demo({"param": "nope", "values": [1]}, base={"strength": 9})
    locs = [p["loc"] for p in client.post("/v1/sweeps", json=body).json()["detail"]]
    assert ["body", "axes", 0, "param"] in locs
    assert ["body", "base", "strength"] in locs


def test_run_cap_comes_from_settings(database_url: str, queue_name: str) -> None:
    app = create_app(
        Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue_name,
            max_runs_per_sweep=4,
        )
    )
    with TestClient(app, headers={"Authorization": f"Bearer {mint_key(app, 'capped')}"}) as c:
        small = c.post("/v1/sweeps", json=demo({"param": "seed", "values": "1-4"}))
        large = c.post(
            "/v1/sweeps",
            json=demo(
                {"param": "seed", "values": "1-2"}, {"param": "blur_radius", "values": "1-3"}
            ),
        )
    app.state.engine.dispose()
    assert small.status_code == 201
    assert large.status_code == 422
    assert large.json()["detail"][0] == {
        **large.json()["detail"][0],
        "type": "too_many_runs",
        "input": 6,
    }


def test_request_body_above_the_limit_is_refused(database_url: str, queue_name: str) -> None:
    app: FastAPI = create_app(
        Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue_name,
            max_request_bytes=2048,
        )
    )
    with TestClient(app, headers={"Authorization": f"Bearer {mint_key(app, 'big')}"}) as c:
        values = ", ".join(str(i) for i in range(1, 2000))
        response = c.post("/v1/sweeps", json=demo({"param": "seed", "values": values}))
    app.state.engine.dispose()
    assert response.status_code == 413


def test_malformed_json_is_a_422_not_a_500(client: TestClient) -> None:
    response = client.post(
        "/v1/sweeps", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
