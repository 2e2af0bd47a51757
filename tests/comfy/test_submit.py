"""`submit` against replayed ComfyUI answers: every rejection shape becomes one RunError."""

from __future__ import annotations

import copy
import socket
import uuid
from typing import Any

import httpx
import pytest

from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError, RunError
from tests.comfy.fakes import FakeComfy, body_of, capture, captured_response

pytestmark = pytest.mark.anyio

PROMPT_ID = "a5278fe9-7f05-4b93-aedf-b26a17628f5e"
CLIENT_ID = "3ac2c95c-b33d-4fbd-a7e2-e388828bad65"


def graph() -> dict[str, Any]:
    return copy.deepcopy(capture("post_prompt_ok")["request"]["prompt"])


async def submit_expecting_error(
    answer: httpx.Response, sent: dict[str, Any] | None = None
) -> tuple[RunError, FakeComfy]:
    comfy = FakeComfy()
    comfy.on("POST", "/prompt", answer)
    comfy.on("POST", "/queue", httpx.Response(200))
    comfy.on("POST", "/interrupt", httpx.Response(200))
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.submit(sent or graph(), prompt_id=PROMPT_ID, client_id=CLIENT_ID)
    return raised.value.error, comfy


async def test_an_accepted_prompt_is_queued_under_our_id() -> None:
    comfy = FakeComfy()
    comfy.on("POST", "/prompt", captured_response("post_prompt_ok"))
    async with comfy.client() as client:
        accepted = await client.submit(
            graph(),
            prompt_id=PROMPT_ID,
            client_id=CLIENT_ID,
            extra_pnginfo={"workflow": {"nodes": []}},
        )
    assert (accepted.prompt_id, accepted.number, accepted.node_errors) == (PROMPT_ID, 0, {})
    body = body_of(comfy.sent("POST", "/prompt")[0])
    assert body == {
        "prompt": graph(),
        "client_id": CLIENT_ID,
        "prompt_id": PROMPT_ID,
        "extra_data": {"extra_pnginfo": {"workflow": {"nodes": []}}},
    }


async def test_a_value_out_of_range_names_node_class_and_input() -> None:
    error, _ = await submit_expecting_error(captured_response("post_prompt_value_out_of_range"))
    assert error == RunError(
        kind="validation",
        message="Value 99 bigger than max of 31",
        node_id="2",
        class_type="ImageBlur",
        input_name="blur_radius",
        details=(
            "node 2 (ImageBlur), input blur_radius, value_bigger_than_max: "
            "Value 99 bigger than max of 31, blur_radius, received 99"
        ),
    )


async def test_a_wrong_type_names_the_input_and_keeps_the_received_value() -> None:
    error, _ = await submit_expecting_error(captured_response("post_prompt_wrong_type"))
    assert (error.kind, error.node_id, error.class_type, error.input_name) == (
        "validation",
        "2",
        "ImageBlur",
        "sigma",
    )
    assert error.message == "Failed to convert an input value to a FLOAT value"
    assert error.details is not None
    assert 'received "abc"' in error.details


async def test_a_dangling_link_is_reported_on_the_node_holding_it() -> None:
    error, _ = await submit_expecting_error(captured_response("post_prompt_dangling_link"))
    assert (error.node_id, error.class_type, error.input_name) == ("2", "ImageBlur", "images")
    assert error.message == "Exception when validating inner node"
    assert error.details is not None
    assert "exception_during_inner_validation" in error.details


async def test_an_unknown_class_type_names_the_node_from_the_graph() -> None:
    sent = graph()
    sent["2"]["class_type"] = "NoSuchNode"
    error, _ = await submit_expecting_error(captured_response("post_prompt_unknown_class"), sent)
    assert error == RunError(
        kind="validation",
        message="Cannot execute because node NoSuchNode does not exist.",
        node_id="2",
        class_type="NoSuchNode",
        details="invalid_prompt: Node ID '#2'",
    )


async def test_a_graph_without_outputs_is_a_whole_prompt_error() -> None:
    error, _ = await submit_expecting_error(captured_response("post_prompt_no_output_node"))
    assert error == RunError(
        kind="validation", message="Prompt has no outputs", details="prompt_no_outputs"
    )


async def test_the_first_node_error_leads_and_every_error_is_kept() -> None:
    body = copy.deepcopy(capture("post_prompt_value_out_of_range")["response"])
    wrong_type = capture("post_prompt_wrong_type")["response"]["node_errors"]["2"]
    body["node_errors"]["7"] = {**wrong_type, "class_type": "ImageSharpen"}
    error, _ = await submit_expecting_error(httpx.Response(400, json=body))
    assert (error.node_id, error.input_name) == ("2", "blur_radius")
    assert error.details is not None
    lines = error.details.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("node 7 (ImageSharpen), input sigma, invalid_input_type")


async def test_a_200_with_node_errors_is_a_failed_submission_taken_back() -> None:
    # ComfyUI queues the outputs that passed and answers 200 (execution.py validate_prompt).
    node_errors = capture("post_prompt_value_out_of_range")["response"]["node_errors"]
    answer = {"prompt_id": PROMPT_ID, "number": 4, "node_errors": node_errors}
    error, comfy = await submit_expecting_error(httpx.Response(200, json=answer))
    assert (error.kind, error.node_id, error.input_name) == ("validation", "2", "blur_radius")
    assert [body_of(r) for r in comfy.sent("POST", "/queue")] == [{"delete": [PROMPT_ID]}]
    assert [body_of(r) for r in comfy.sent("POST", "/interrupt")] == [{"prompt_id": PROMPT_ID}]


async def test_a_server_that_ignores_our_prompt_id_is_a_protocol_error() -> None:
    other = str(uuid.uuid4())
    answer = {"prompt_id": other, "number": 1, "node_errors": {}}
    error, comfy = await submit_expecting_error(httpx.Response(200, json=answer))
    assert error.kind == "protocol"
    assert [body_of(r) for r in comfy.sent("POST", "/queue")] == [{"delete": [other]}]


async def test_a_500_is_a_transport_error() -> None:
    error, _ = await submit_expecting_error(captured_response("post_prompt_not_json"))
    assert error.kind == "transport"
    assert "500" in error.message


async def test_a_400_that_is_not_json_is_a_protocol_error() -> None:
    error, _ = await submit_expecting_error(httpx.Response(400, text="Bad Request"))
    assert error.kind == "protocol"


async def test_an_unreachable_instance_is_a_transport_error() -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, never listening: connections are refused
        async with ComfyClient(f"http://127.0.0.1:{port}") as client:
            with pytest.raises(ComfyError) as raised:
                await client.submit(graph(), prompt_id=PROMPT_ID, client_id=CLIENT_ID)
    assert raised.value.error.kind == "transport"
    assert raised.value.error.message == "POST /prompt failed: ClientConnectorError"


async def test_a_connection_dropped_before_the_answer_is_a_transport_error() -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.RemoteProtocolError("dropped", request=request)

    comfy = FakeComfy()
    comfy.on("POST", "/prompt", drop)
    async with comfy.client() as client:
        with pytest.raises(ComfyError) as raised:
            await client.submit(graph(), prompt_id=PROMPT_ID, client_id=CLIENT_ID)
    assert raised.value.error.kind == "transport"


@pytest.mark.parametrize("prompt_id", ["", "run-1", PROMPT_ID.upper(), PROMPT_ID.replace("-", "")])
async def test_only_canonical_uuids_are_sent_as_prompt_ids(prompt_id: str) -> None:
    comfy = FakeComfy()
    async with comfy.client() as client:
        with pytest.raises(ValueError, match="lowercase hyphenated UUID"):
            await client.submit(graph(), prompt_id=prompt_id, client_id=CLIENT_ID)
        with pytest.raises(ValueError, match="lowercase hyphenated UUID"):
            await client.interrupt(prompt_id)
    assert comfy.requests == []
