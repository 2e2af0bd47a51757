"""Injected faults (`--faults`, `POST /standin/faults`) and ComfyUI's own runtime failures."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from app.standin.faults import parse_faults
from app.standin.model_files import ModelFiles
from app.standin.specs import load_specs
from app.standin.validation import reject_out_of_range, validate_prompt
from tests.standin.wire import (
    Message,
    capture,
    demo_graph,
    output_image,
    read_until_done,
    shape,
    submit,
    txt2img_graph,
    types,
    unique,
    wait_history,
)
from tests.support.standin_process import Standin

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


def post_prompt(http: httpx.Client, graph: dict[str, Any]) -> httpx.Response:
    return http.post("/prompt", json={"prompt": graph, "client_id": "reject"})


def refusal_shape(body: dict[str, Any]) -> Any:
    """Keys and JSON types of a `POST /prompt` refusal, whichever nodes it names."""
    return shape({"error": body["error"], "node_errors": list(body["node_errors"].values())})


def blur_first_graph(prefix: str) -> dict[str, Any]:
    """The capture's graph (post_prompt_value_out_of_range), ImageBlur listed first."""
    return {
        "2": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.5},
        },
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0},
        },
        "3": {"class_type": "SaveImage", "inputs": {"images": ["2", 0], "filename_prefix": prefix}},
    }


def test_reject_spec_counts_submissions() -> None:
    plan = parse_faults("reject:+2,reject:9,fail:+1", started=7, submitted=3)
    assert plan.spec() == "fail:8,reject:5,reject:9"
    assert plan.as_json()["reject"] == ["5", "9"]
    assert parse_faults("reject:*").reject.matches(12345)


def empty_image(width: Any = 8) -> dict[str, Any]:
    inputs = {"width": width, "height": 8, "batch_size": 1, "color": 0}
    return {"class_type": "EmptyImage", "inputs": inputs}


def webp(images: str) -> dict[str, Any]:
    inputs = {
        "images": [images, 0],
        "filename_prefix": "w",
        "fps": 6.0,
        "lossless": True,
        "quality": 80,
        "method": "default",
    }
    return {"class_type": "SaveAnimatedWEBP", "inputs": inputs}


def test_reject_names_the_first_node_the_accepted_outputs_need() -> None:
    specs = load_specs(ModelFiles())
    graph: dict[str, Any] = {
        "9": empty_image(),  # feeds no output: not validated, not named
        "1": empty_image(),
        "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "x"}},
        "5": webp("1"),
        "6": empty_image(),
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": "y"}},
    }
    validation = validate_prompt(graph, specs)
    assert validation.ok
    rejection = reject_out_of_range(graph, specs, None, validation.outputs)
    assert rejection is not None
    assert not rejection.ok
    assert rejection.error is not None
    assert rejection.error["details"] == ""
    assert list(rejection.node_errors) == ["1"]  # refused although "7" does not need "1"
    node: Any = rejection.node_errors["1"]
    assert node["dependent_outputs"] == ["2", "5"]
    assert node["errors"][0]["extra_info"]["received_value"] == 16385

    later = reject_out_of_range(graph, specs, ["7"], ["7"])
    assert later is not None
    assert list(later.node_errors) == ["6"]


def test_reject_on_an_output_node_reports_it_in_details() -> None:
    specs = load_specs(ModelFiles())
    graph: dict[str, Any] = {
        "5": webp("6"),
        "6": empty_image(width=["7", 0]),
        "7": {"class_type": "PrimitiveInt", "inputs": {"value": 8}},
    }
    validation = validate_prompt(graph, specs)
    assert validation.ok
    rejection = reject_out_of_range(graph, specs, None, validation.outputs)
    assert rejection is not None
    assert list(rejection.node_errors) == ["5"]
    node: Any = rejection.node_errors["5"]
    assert node["dependent_outputs"] == ["5"]
    assert node["errors"][0]["extra_info"]["input_name"] == "fps"
    assert node["errors"][0]["extra_info"]["received_value"] == 1001.0
    assert rejection.error is not None
    assert rejection.error["details"] == "Value 1001.0 bigger than max of 1000.0: fps"

    assert reject_out_of_range({"5": graph["5"], "6": empty_image()}, specs, None, []) is None


def test_reject_fault_refuses_like_an_out_of_range_value(
    http: httpx.Client, faults: Callable[[str], None]
) -> None:
    before = http.get("/standin/faults").json()["prompts_submitted"]
    faults("reject:+1")
    state = http.get("/standin/faults").json()
    assert state["reject"] == [str(before + 1)]
    assert state["spec"] == f"reject:{before + 1}"

    response = post_prompt(http, blur_first_graph(unique("reject")))
    assert response.status_code == 400
    expected = copy.deepcopy(capture("post_prompt_value_out_of_range")["response"])
    error = expected["node_errors"]["2"]["errors"][0]
    error["message"], error["extra_info"]["received_value"] = "Value 32 bigger than max of 31", 32
    assert response.json() == expected

    queue = http.get("/queue").json()
    assert queue["queue_running"] == []
    assert queue["queue_pending"] == []
    assert http.get("/standin/faults").json()["prompts_submitted"] == before + 1
    stats = http.get("/system_stats").json()["standin"]
    assert stats["prompts_submitted"] == before + 1
    assert stats["faults"]["reject"] == [str(before + 1)]

    accepted = post_prompt(http, blur_first_graph(unique("after-reject")))
    assert accepted.status_code == 200, accepted.text
    assert wait_history(http, accepted.json()["prompt_id"])["status"]["status_str"] == "success"


def test_reject_every_submission_names_the_first_numeric_node(
    http: httpx.Client, faults: Callable[[str], None]
) -> None:
    faults("reject:*")
    for _ in range(2):
        response = post_prompt(http, demo_graph(unique("reject-all")))
        assert response.status_code == 400
        body = response.json()
        expected = capture("post_prompt_value_out_of_range")["response"]
        assert refusal_shape(body) == refusal_shape(expected)
        assert body["error"] == expected["error"]
        assert list(body["node_errors"]) == ["1"]
        node = body["node_errors"]["1"]
        assert node["class_type"] == "EmptyImage"
        assert node["dependent_outputs"] == ["4"]
        assert node["errors"] == [
            {
                "type": "value_bigger_than_max",
                "message": "Value 16385 bigger than max of 16384",
                "details": "width",
                "extra_info": {
                    "input_name": "width",
                    "input_config": [
                        "INT",
                        {"default": 512, "min": 1, "max": 16384, "step": 1},
                    ],
                    "received_value": 16385,
                },
            }
        ]


def test_reject_keeps_the_real_errors_of_an_invalid_prompt(
    http: httpx.Client, faults: Callable[[str], None]
) -> None:
    faults("reject:+1")
    graph = blur_first_graph(unique("reject-invalid"))
    graph["2"]["inputs"]["blur_radius"] = 99
    response = post_prompt(http, graph)
    assert response.status_code == 400
    assert response.json() == capture("post_prompt_value_out_of_range")["response"]


def test_cli_reject_fault_refuses_the_second_submission(
    start_standin: Callable[..., Standin],
) -> None:
    standin = start_standin("--faults", "reject:2")
    with httpx.Client(base_url=standin.base_url, timeout=10.0) as http:
        state = http.get("/standin/faults").json()
        assert state["reject"] == ["2"]
        assert state["spec"] == "reject:2"
        graph = txt2img_graph("cli-reject", steps=2)
        first = post_prompt(http, graph)
        assert first.status_code == 200, first.text
        refused = post_prompt(http, graph)
        assert refused.status_code == 400
        body = refused.json()
        expected = capture("post_prompt_value_out_of_range")["response"]
        assert refusal_shape(body) == refusal_shape(expected)
        node = body["node_errors"]["4"]
        assert node["class_type"] == "EmptyLatentImage"
        assert node["dependent_outputs"] == ["7"]
        assert node["errors"][0]["type"] == "value_bigger_than_max"
        assert node["errors"][0]["extra_info"]["input_name"] == "width"
        assert node["errors"][0]["extra_info"]["received_value"] == 16385
        third = post_prompt(http, graph)
        assert third.status_code == 200, third.text
        assert third.json()["number"] == 2  # the refused one used up number 1, as on ComfyUI
        for answer in (first, third):
            history = wait_history(http, answer.json()["prompt_id"])
            assert history["status"]["status_str"] == "success"
        assert len(http.get("/history").json()) == 2
        standin_stats = http.get("/system_stats").json()["standin"]
        assert standin_stats["prompts_submitted"] == 3
        assert standin_stats["prompts_executed"] == 2
