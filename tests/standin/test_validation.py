"""`POST /prompt` refusals carry ComfyUI's exact bodies (captures post_prompt_*)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.standin.wire import capture, shape

pytestmark = pytest.mark.timeout(60)


def blur_graph(**blur_inputs: Any) -> dict[str, Any]:
    return {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": 64, "height": 48, "batch_size": 1, "color": 0},
        },
        "2": {
            "class_type": "ImageBlur",
            "inputs": {"image": ["1", 0], "blur_radius": 3, "sigma": 1.5, **blur_inputs},
        },
        "3": {
            "class_type": "SaveImage",
            "inputs": {"images": ["2", 0], "filename_prefix": "refused"},
        },
    }


def refuse(http: httpx.Client, prompt: dict[str, Any]) -> dict[str, Any]:
    response = http.post("/prompt", json={"prompt": prompt, "client_id": "validation"})
    assert response.status_code == 400, response.text
    return dict(response.json())


def without_tracebacks(body: dict[str, Any]) -> dict[str, Any]:
    for node in body["node_errors"].values():
        for error in node["errors"]:
            error["extra_info"].pop("traceback", None)
    return body


def test_unknown_class(http: httpx.Client) -> None:
    prompt = blur_graph()
    prompt["2"]["class_type"] = "NoSuchNode"
    assert refuse(http, prompt) == capture("post_prompt_unknown_class")["response"]


def test_no_output_node(http: httpx.Client) -> None:
    prompt = blur_graph()
    del prompt["3"]
    assert refuse(http, prompt) == capture("post_prompt_no_output_node")["response"]


def test_value_bigger_than_max(http: httpx.Client) -> None:
    body = refuse(http, blur_graph(blur_radius=99))
    assert body == capture("post_prompt_value_out_of_range")["response"]


def test_wrong_type(http: httpx.Client) -> None:
    assert refuse(http, blur_graph(sigma="abc")) == capture("post_prompt_wrong_type")["response"]


def test_dangling_link(http: httpx.Client) -> None:
    body = refuse(http, blur_graph(image=["9", 0]))
    expected = capture("post_prompt_dangling_link")["response"]
    assert shape(body) == shape(expected)
    assert without_tracebacks(body) == without_tracebacks(expected)


def _only_error(body: dict[str, Any], node_id: str) -> dict[str, Any]:
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    assert list(body["node_errors"]) == [node_id]
    assert body["node_errors"][node_id]["dependent_outputs"] == ["3"]
    [error] = body["node_errors"][node_id]["errors"]
    assert shape(error) == {
        "type": "str",
        "message": "str",
        "details": "str",
        "extra_info": shape(error["extra_info"]),
    }
    return dict(error)


def test_value_smaller_than_min(http: httpx.Client) -> None:
    error = _only_error(refuse(http, blur_graph(sigma=0.01)), "2")
    assert error["type"] == "value_smaller_than_min"
    assert error["message"] == "Value 0.01 smaller than min of 0.1"
    assert error["extra_info"]["received_value"] == 0.01


def test_value_not_in_list(http: httpx.Client) -> None:
    prompt = blur_graph()
    prompt["2"] = {
        "class_type": "ImageScale",
        "inputs": {
            "image": ["1", 0],
            "upscale_method": "sideways",
            "width": 32,
            "height": 32,
            "crop": "disabled",
        },
    }
    error = _only_error(refuse(http, prompt), "2")
    assert error["type"] == "value_not_in_list"
    assert error["details"].startswith("upscale_method: 'sideways' not in ['nearest-exact',")


def test_required_input_missing(http: httpx.Client) -> None:
    prompt = blur_graph()
    del prompt["2"]["inputs"]["sigma"]
    error = _only_error(refuse(http, prompt), "2")
    assert error == {
        "type": "required_input_missing",
        "message": "Required input is missing",
        "details": "sigma",
        "extra_info": {"input_name": "sigma"},
    }


def test_return_type_mismatch(http: httpx.Client) -> None:
    prompt = blur_graph()
    prompt["4"] = {
        "class_type": "EmptyLatentImage",
        "inputs": {"width": 64, "height": 64, "batch_size": 1},
    }
    prompt["2"]["inputs"]["image"] = ["4", 0]
    assert _only_error(refuse(http, prompt), "2")["type"] == "return_type_mismatch"


def test_one_valid_output_is_enough_and_errors_still_come_back(http: httpx.Client) -> None:
    prompt = blur_graph(blur_radius=99)
    prompt["4"] = {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}}
    response = http.post("/prompt", json={"prompt": prompt, "client_id": "validation"})
    assert response.status_code == 200
    assert response.json()["node_errors"]["2"]["errors"][0]["type"] == "value_bigger_than_max"


def test_body_that_is_not_json_gets_a_bare_500(http: httpx.Client) -> None:
    response = http.post("/prompt", content=b"{not json")
    expected = capture("post_prompt_not_json")
    assert response.status_code == expected["status"]
    assert response.text == expected["text"]


def test_client_chosen_prompt_id_is_honoured_without_dedup(http: httpx.Client) -> None:
    prompt = blur_graph()
    prompt["3"]["inputs"]["filename_prefix"] = "chosen-id"
    body = {"prompt": prompt, "client_id": "validation", "prompt_id": "my-own-id"}
    first, second = http.post("/prompt", json=body), http.post("/prompt", json=body)
    assert first.json()["prompt_id"] == second.json()["prompt_id"] == "my-own-id"
    assert second.json()["number"] == first.json()["number"] + 1
