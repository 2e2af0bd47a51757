"""Queue order and control, interrupts, and history paging, like ComfyUI's PromptQueue."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.standin.wire import capture, demo_graph, read_until_done, submit, unique, wait_history
from tests.support.standin_process import Standin

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def hang_next(http: httpx.Client) -> Iterator[None]:
    """The next prompt to start hangs until it is interrupted."""
    assert http.post("/standin/faults", json={"spec": "hang:+1"}).status_code == 200
    yield
    http.post("/standin/faults", json={"spec": ""})


def wait_running(http: httpx.Client, prompt_id: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if [item[1] for item in http.get("/queue").json()["queue_running"]] == [prompt_id]:
            return
        time.sleep(0.02)
    raise AssertionError(f"{prompt_id} never ran")


def queued(http: httpx.Client) -> tuple[list[str], list[Any]]:
    body = http.get("/queue").json()
    pending = sorted(body["queue_pending"], key=lambda item: item[0])
    return [item[1] for item in body["queue_running"]], pending


@pytest.mark.usefixtures("hang_next")
def test_delete_front_and_targeted_interrupt(standin: Standin, http: httpx.Client) -> None:
    client_id = str(uuid.uuid4())
    with connect(standin.ws_url(client_id)) as ws:
        ws.recv(timeout=5)
        hung = submit(http, demo_graph(unique("hung"), seed=1), client_id)
        wait_running(http, hung)
        deleted = submit(http, demo_graph(unique("deleted"), seed=2), client_id)
        last = submit(http, demo_graph(unique("last"), seed=3), client_id)
        first = submit(http, demo_graph(unique("front"), seed=4), client_id, front=True)

        running, pending = queued(http)
        assert running == [hung]
        assert [item[1] for item in pending] == [first, deleted, last]
        assert pending[0][0] < 0  # front=true: a negative number
        assert [len(item) for item in pending] == [
            len(capture("get_queue_busy")["queue_pending"][0])
        ] * 3

        assert http.post("/queue", json={"delete": [deleted]}).status_code == 200
        assert [item[1] for item in queued(http)[1]] == [first, last]

        http.post("/interrupt", json={"prompt_id": last})  # not running: ignored
        time.sleep(0.3)
        assert queued(http)[0] == [hung]

        http.post("/interrupt", json={"prompt_id": hung})
        messages = read_until_done(ws, last)

    starts = [m["data"]["prompt_id"] for m in messages if m["type"] == "execution_start"]
    assert starts == [hung, first, last]
    interrupted = next(m for m in messages if m["type"] == "execution_interrupted")
    assert set(interrupted["data"]) == set(capture("ws_interrupted")[-3]["data"])
    assert interrupted["data"]["node_id"] == "1"

    history = wait_history(http, hung)
    assert history["outputs"] == {}
    assert history["status"]["status_str"] == "error"
    assert history["status"]["completed"] is False
    assert history["status"]["messages"][-1][0] == "execution_interrupted"
    assert wait_history(http, last)["status"]["status_str"] == "success"
    assert http.get(f"/history/{deleted}").json() == {}


@pytest.mark.usefixtures("hang_next")
def test_bare_interrupt_stops_whatever_runs_and_clear_empties_the_queue(
    http: httpx.Client,
) -> None:
    hung = submit(http, demo_graph(unique("hung"), seed=5), "nobody")
    wait_running(http, hung)
    for seed in (6, 7):
        submit(http, demo_graph(unique("cleared"), seed=seed), "nobody")
    assert http.post("/queue", json={"clear": True}).status_code == 200
    assert queued(http) == ([hung], [])
    assert http.post("/interrupt").status_code == 200
    assert wait_history(http, hung)["status"]["status_str"] == "error"
    assert http.get("/prompt").json() == capture("get_prompt_idle")


def test_history_paging_and_delete(standin: Standin, http: httpx.Client) -> None:
    ids = [submit(http, demo_graph(unique("paged"), seed=10 + i), "nobody") for i in range(3)]
    for prompt_id in ids:
        wait_history(http, prompt_id)
    assert list(http.get("/history", params={"max_items": 2}).json()) == ids[1:]
    assert http.post("/history", json={"delete": [ids[2]]}).status_code == 200
    assert http.get(f"/history/{ids[2]}").json() == {}
    assert list(http.get("/history", params={"max_items": 2}).json()) == ids[:2]
    assert http.post("/history", json={"clear": True}).status_code == 200
    assert http.get("/history").json() == {}
