"""A prompt runs with ComfyUI's event sequence, history, files and input-signature cache."""

from __future__ import annotations

import io
import json
import uuid
from typing import Any

import httpx
import pytest
from PIL import Image
from websockets.sync.client import connect

from tests.standin.wire import (
    Message,
    capture,
    demo_graph,
    drain,
    output_image,
    read_until_done,
    shape,
    submit,
    types,
    unique,
    wait_history,
)
from tests.support.standin_process import Standin

pytestmark = pytest.mark.timeout(60)


def fresh_sequence(node_ids: list[str], output_ids: set[str]) -> list[str]:
    """What ComfyUI sends for a prompt with nothing cached (capture ws_run_fresh)."""
    sequence = ["status", "status", "execution_start", "execution_cached"]
    for node_id in node_ids:
        sequence += ["progress_state", "executing"]
        sequence += ["executed"] if node_id in output_ids else []
        sequence += ["progress_state"]
    return [*sequence, "execution_success", "status", "executing"]


def test_fresh_sequence_model_matches_the_capture() -> None:
    assert types(capture("ws_run_fresh")) == fresh_sequence(["1", "2", "3"], {"3"})


def test_capture_prompt_gives_the_captured_messages(standin: Standin, http: httpx.Client) -> None:
    request = capture("post_prompt_ok")["request"]
    request["prompt"] = capture_graph(unique("probe"), width=65)  # nothing cached elsewhere
    client_id = str(uuid.uuid4())
    with connect(standin.ws_url(client_id)) as ws:
        hello = json.loads(ws.recv(timeout=5))
        prompt_id = submit(http, request["prompt"], client_id)
        messages = read_until_done(ws, prompt_id)
    assert shape(hello) == shape(capture("ws_00_hello_status"))
    assert hello["data"]["sid"] == client_id
    expected = capture("ws_run_fresh")
    assert types(messages) == types(expected)
    assert [shape(m) for m in messages] == [shape(m) for m in expected]
    assert [m["data"]["node"] for m in messages if m["type"] == "executing"] == [
        "1",
        "2",
        "3",
        None,
    ]


def test_demo_graph_runs_and_its_png_carries_the_prompt(
    standin: Standin, http: httpx.Client
) -> None:
    graph = demo_graph(f"demo/{unique('run')}", seed=11)
    workflow = {"nodes": [], "links": [], "version": 0.4}
    client_id = str(uuid.uuid4())
    with connect(standin.ws_url(client_id)) as ws, connect(standin.ws_url("bystander")) as other:
        ws.recv(timeout=5)
        extra = {"extra_data": {"extra_pnginfo": {"workflow": workflow}}}
        prompt_id = submit(http, graph, client_id, **extra)
        messages = read_until_done(ws, prompt_id)
        seen_by_other = drain(other)
    assert types(messages) == fresh_sequence(["1", "2", "3", "4"], {"4"})
    assert set(types(seen_by_other)) == {"status"}  # per-prompt events only reach their client

    history = wait_history(http, prompt_id)
    assert list(history["outputs"]) == list(history["meta"]) == ["4"]
    assert history["status"] == {
        "status_str": "success",
        "completed": True,
        "messages": history["status"]["messages"],
    }
    assert [m[0] for m in history["status"]["messages"]] == [
        "execution_start",
        "execution_cached",
        "execution_success",
    ]
    image = output_image(history, "4")
    assert image["subfolder"] == "demo"
    assert image["type"] == "output"
    assert image["filename"].endswith("_00001_.png")

    response = http.get("/view", params=image)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == f'filename="{image["filename"]}"'
    png = Image.open(io.BytesIO(response.content))
    assert png.size == (64, 48)
    assert json.loads(png.info["prompt"]) == graph
    assert json.loads(png.info["workflow"]) == workflow


def _run(standin: Standin, http: httpx.Client, graph: dict[str, Any]) -> list[Message]:
    client_id = str(uuid.uuid4())
    with connect(standin.ws_url(client_id)) as ws:
        ws.recv(timeout=5)
        prompt_id = submit(http, graph, client_id)
        return read_until_done(ws, prompt_id)


def _executing(messages: list[Message]) -> list[object]:
    return [m["data"]["node"] for m in messages if m["type"] == "executing"]


def _cached(messages: list[Message]) -> object:
    return next(m["data"]["nodes"] for m in messages if m["type"] == "execution_cached")


def _saved(messages: list[Message]) -> Any:
    return next(m["data"]["output"] for m in messages if m["type"] == "executed")


def capture_graph(prefix: str, width: int) -> dict[str, Any]:
    """The three-node graph of the captures, with its own prefix and size."""
    graph: dict[str, Any] = capture("post_prompt_ok")["request"]["prompt"]
    graph["1"]["inputs"]["width"] = width
    graph["3"]["inputs"]["filename_prefix"] = prefix
    return graph


def test_identical_prompt_is_fully_cached(standin: Standin, http: httpx.Client) -> None:
    graph = capture_graph(unique("cached"), width=66)
    first = _run(standin, http, graph)
    second = _run(standin, http, graph)
    assert _cached(second) == ["1", "2", "3"]
    assert _executing(second) == [None]
    assert types(second) == types(capture("ws_run_all_cached"))
    assert [shape(m) for m in second] == [shape(m) for m in capture("ws_run_all_cached")]
    assert _saved(second) == _saved(first)  # the earlier file, not a new one


def test_changing_the_blur_reruns_only_blur_and_save(standin: Standin, http: httpx.Client) -> None:
    prefix = unique("partial")
    _run(standin, http, demo_graph(prefix, seed=31, sigma=1.0))
    changed = _run(standin, http, demo_graph(prefix, seed=31, sigma=2.5))
    assert _cached(changed) == ["1", "2"]
    assert _executing(changed) == ["3", "4", None]
    assert types(changed) == types(capture("ws_run_partial_cache"))
    saved = _saved(changed)
    assert saved["images"][0]["filename"] == f"{prefix}_00002_.png"


def test_cache_follows_inputs_not_node_ids(standin: Standin, http: httpx.Client) -> None:
    graph = demo_graph(unique("renumbered"), seed=41)
    _run(standin, http, graph)
    renumbered = {f"n{key}": node for key, node in json.loads(json.dumps(graph)).items()}
    for node in renumbered.values():
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                node["inputs"][name] = [f"n{value[0]}", value[1]]
    assert _executing(_run(standin, http, renumbered)) == [None]
