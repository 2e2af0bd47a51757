"""Injected faults (`--faults`, `POST /standin/faults`) and ComfyUI's own runtime failures."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.standin.conftest import Standin
from tests.standin.wire import (
    Message,
    capture,
    demo_graph,
    output_image,
    read_until_done,
    submit,
    types,
    unique,
    wait_history,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def faults(http: httpx.Client) -> Iterator[Callable[[str], None]]:
    def apply(spec: str) -> None:
        response = http.post("/standin/faults", json={"spec": spec})
        assert response.status_code == 200, response.text

    yield apply
    apply("")


def run(
    standin: Standin, http: httpx.Client, graph: dict[str, object]
) -> tuple[str, list[Message]]:
    client_id = str(uuid.uuid4())
    with connect(standin.ws_url(client_id)) as ws:
        ws.recv(timeout=5)
        prompt_id = submit(http, graph, client_id)
        return prompt_id, read_until_done(ws, prompt_id)


def error_of(messages: list[Message]) -> dict[str, object]:
    return dict(next(m["data"] for m in messages if m["type"] == "execution_error"))


def test_fail_fault_reports_an_execution_error_then_recovers(
    standin: Standin, http: httpx.Client, faults: Callable[[str], None]
) -> None:
    faults("fail:+1")
    prompt_id, messages = run(standin, http, demo_graph(unique("fail"), seed=1))
    captured = capture("ws_execution_error")
    assert types(messages)[-3:] == ["execution_error", "status", "executing"]
    assert "execution_success" not in types(messages)
    error = error_of(messages)
    assert set(error) == set(captured[-1]["data"])
    assert error["exception_type"] == "RuntimeError"
    assert error["node_id"] == "1"
    history = wait_history(http, prompt_id)
    assert history["status"]["status_str"] == "error"
    assert history["status"]["messages"][-1][0] == "execution_error"

    next_id, _ = run(standin, http, demo_graph(unique("after"), seed=2))
    assert wait_history(http, next_id)["status"]["status_str"] == "success"


def test_blur_bigger_than_the_image_fails_like_comfyui(
    standin: Standin, http: httpx.Client
) -> None:
    expected = capture("ws_runtime_candidate")[-3]["data"]  # the same graph, on ComfyUI
    graph: dict[str, object] = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {
            "class_type": "ImageCrop",
            "inputs": {"image": ["1", 0], "width": 4, "height": 4, "x": 100, "y": 100},
        },
        "3": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["2", 0], "blur_radius": 31, "sigma": 10.0},
        },
        "4": {"class_type": "SaveImage", "inputs": {"images": ["3", 0], "filename_prefix": "rt"}},
    }
    _, messages = run(standin, http, graph)
    error = error_of(messages)
    for key in ("node_id", "node_type", "executed", "exception_type", "exception_message"):
        assert error[key] == expected[key], key
    assert error["current_inputs"]["blur_radius"] == [31]  # type: ignore[index]
    assert error["current_outputs"] == ["1", "2", "3", "4"]


def test_slow_view(standin: Standin, http: httpx.Client, faults: Callable[[str], None]) -> None:
    prompt_id, _ = run(standin, http, demo_graph(unique("slow"), seed=3))
    image = output_image(wait_history(http, prompt_id), "4")
    faults("slow-view:400")
    started = time.monotonic()
    assert http.get("/view", params=image).status_code == 200
    assert time.monotonic() - started >= 0.4
    assert http.get("/standin/faults").json()["slow_view_ms"] == 400


def test_fault_spec_round_trips_and_bad_specs_are_refused(
    http: httpx.Client, faults: Callable[[str], None]
) -> None:
    executed = http.get("/system_stats").json()["standin"]["prompts_executed"]
    response = http.post("/standin/faults", json={"fail": ["+2", 40], "hang": ["*"]})
    assert response.json()["spec"] == f"fail:{executed + 2},fail:40,hang:*"
    for bad in ("explode:1", "fail:0", "fail", "slow-view:soon"):
        assert http.post("/standin/faults", json={"spec": bad}).status_code == 400, bad
    assert http.post("/standin/faults", content=b"not json").status_code == 400


def types_until_closed(ws: ClientConnection) -> list[str]:
    seen: list[str] = []
    try:
        while True:
            seen.append(json.loads(ws.recv(timeout=10))["type"])
    except ConnectionClosed:
        return seen


def test_cli_faults_fail_the_first_prompt_and_kill_the_process_in_the_second(
    start_standin: Callable[..., Standin],
) -> None:
    standin = start_standin("--faults", "fail:1,die:2")
    with httpx.Client(base_url=standin.base_url, timeout=10.0) as http:
        first, _ = run(standin, http, demo_graph("cli-fail"))
        assert wait_history(http, first)["status"]["status_str"] == "error"
        client_id = str(uuid.uuid4())
        with connect(standin.ws_url(client_id)) as ws:
            ws.recv(timeout=5)
            submit(http, demo_graph("cli-die", seed=9), client_id)
            seen = types_until_closed(ws)
    assert standin.process.wait(timeout=10) == 1
    assert "execution_start" in seen
    assert "execution_success" not in seen
