"""Bodies strict JSON would refuse but Python's parser reads (NaN, Infinity, 1e400, lone
surrogates, duplicate keys, deep nesting) sent raw to every POST route: each answer is JSON
with a documented status, never a 500, and a non-finite number is a 422 naming its field."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.main import create_app

ALLOWED = {200, 201, 400, 404, 409, 413, 422}  # cancel takes no body: 200
HEADERS = {"Content-Type": "application/json"}


def _cancel_path(client: TestClient) -> str:
    created = client.post("/v1/sweeps", json={"workflow": "demo-noise"})
    assert created.status_code == 201, created.text
    return f"/v1/sweeps/{created.json()['id']}/cancel"


# (body, the field its 422 must name)
NON_FINITE: list[tuple[str, list[str | int]]] = [
    ('{"workflow":"demo-noise","axes":[{"param":"strength","values":[NaN]}]}', ["axes", 0]),
    ('{"workflow":"demo-noise","axes":[{"param":"strength","values":[Infinity]}]}', ["axes", 0]),
    ('{"workflow":"demo-noise","axes":[{"param":"strength","values":[1e400]}]}', ["axes", 0]),
    ('{"workflow":"demo-noise","axes":[{"param":"strength","values":"1e400"}]}', ["axes", 0]),
    ('{"workflow":"demo-noise","axes":[{"param":"strength","values":"-1e999"}]}', ["axes", 0]),
    ('{"workflow":"demo-noise","base":{"strength":-Infinity}}', ["base", "strength"]),
    ('{"workflow":"demo-noise","base":{"width":NaN}}', ["base", "width"]),
    ('{"workflow":"sd15-txt2img","axes":[{"param":"cfg","values":[NaN]}]}', ["axes", 0]),
    ('{"workflow":"sd15-txt2img","base":{"cfg":-Infinity}}', ["base", "cfg"]),
    ('{"workflow":"demo-noise","seeds":{"count":1,"start":NaN}}', ["seeds", "start"]),
    ('{"workflow":"demo-noise","seeds":{"count":Infinity,"start":1}}', ["seeds", "count"]),
    ('{"workflow":"demo-noise","seeds":{"count":1,"start":1e400}}', ["seeds", "start"]),
    (
        '{"workflow":"demo-noise","sampling":{"strategy":"sobol","samples":4,'
        '"ranges":{"strength":{"min":0,"max":NaN}}}}',
        ["sampling", "ranges", "strength"],
    ),
    (
        '{"workflow":"demo-noise","sampling":{"strategy":"lhs","samples":4,'
        '"ranges":{"strength":{"min":-1e999,"max":1}}}}',
        ["sampling", "ranges", "strength"],
    ),
    (
        '{"workflow":"demo-noise","sampling":{"strategy":"lhs","samples":NaN,'
        '"ranges":{"strength":{"min":0,"max":1}}}}',
        ["sampling", "samples"],
    ),
]


def _assert_json_answer(response: Any) -> None:
    assert response.status_code in ALLOWED, (response.status_code, response.text)
    assert response.headers["content-type"] == "application/json", response.text
    response.json()  # strict JSON: no NaN or Infinity tokens in the answer either


@pytest.mark.parametrize(("body", "field"), NON_FINITE)
def test_a_non_finite_number_is_a_422_naming_its_field(
    client: TestClient, body: str, field: list[str | int]
) -> None:
    response = client.post("/v1/sweeps", content=body, headers=HEADERS)
    _assert_json_answer(response)
    assert response.status_code == 422, response.text
    locs = [p["loc"][1 : 1 + len(field)] for p in response.json()["detail"]]
    assert field in locs, response.json()


def test_the_echoed_non_finite_input_is_spelt_as_a_string(client: TestClient) -> None:
    body = '{"workflow":"demo-noise","axes":[{"param":"strength","values":[0.5, NaN]}]}'
    problem = client.post("/v1/sweeps", content=body, headers=HEADERS).json()["detail"][0]
    assert problem["input"] == "NaN"


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


ODD_BODIES = [
    '{"workflow":"\\ud800"}',
    '{"workflow":"demo-noise","base":{"prompt":"\\udfff"}}',
    '{"workflow":"demo-noise","axes":[{"param":"strength","values":"\\ud800"}]}',
    '{"workflow":"demo-noise","workflow":"nope"}',
    '{"workflow":"demo-noise","axes":[],"axes":[{"param":"strength","values":[NaN]}]}',
    '{"workflow":"demo-noise","axes":' + _nested(5000) + "}",
    _nested(100_000),
    "NaN",
    "-Infinity",
    "1e400",
    '"\\ud800"',
]


@pytest.fixture
def post_paths(client: TestClient) -> list[str]:
    return ["/v1/sweeps", _cancel_path(client)]


@pytest.mark.parametrize("body", ODD_BODIES)
def test_an_odd_body_gets_a_json_answer(
    client: TestClient, post_paths: list[str], body: str
) -> None:
    for path in post_paths:
        _assert_json_answer(client.post(path, content=body, headers=HEADERS))


ATOMS = st.sampled_from(
    ["NaN", "Infinity", "-Infinity", "1e400", "-1e999", '"\\ud800"', '"1e400"', "0", '"x"']
)


def _object(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    keys = st.sampled_from(["workflow", "axes", "param", "values", "base", "seeds", "start"])
    pairs = st.lists(st.tuples(keys, children), max_size=4)  # keys may repeat
    return pairs.map(lambda kv: "{" + ",".join(f'"{k}":{v}' for k, v in kv) + "}")


RAW_JSON = st.recursive(
    ATOMS,
    lambda children: (
        st.lists(children, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]") | _object(children)
    ),
    max_leaves=12,
)


def test_generated_non_strict_json_gets_a_json_answer(
    client: TestClient, post_paths: list[str]
) -> None:
    @given(body=RAW_JSON, path=st.sampled_from(post_paths))
    @settings(
        max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    def post(body: str, path: str) -> None:
        _assert_json_answer(client.post(path, content=body, headers=HEADERS))

    post()


def test_a_chunked_body_over_the_limit_is_a_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"workflow":"demo-noise","base":{"prompt":"'
        for _ in range(200):
            yield b"x" * 10_000  # 2 MB in all, above MAX_REQUEST_BYTES' 1 MB
        yield b'"}}'

    response = client.post("/v1/sweeps", content=chunks(), headers=HEADERS)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413, response.text
    assert response.json()["detail"] == "request body is above the size limit"


def test_a_bug_is_a_json_500_with_a_request_id(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/boom")
    assert response.status_code == 500
    request_id = response.headers["X-Request-Id"]
    assert request_id in response.json()["detail"]
    logged = [r for r in caplog.records if r.name == "app.api.errors"]
    assert logged[0].__dict__["request_id"] == request_id
    assert logged[0].exc_info is not None
