"""The event stream of the API as its own uvicorn process, with a real worker, the
reconciler and two stand-ins: a client that reads part of a running sweep's stream, hangs
up and reconnects with `Last-Event-ID` gets the sweep's whole log exactly once, in order,
ending with `sweep.finished`; and SIGTERM ends open streams promptly."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest
from httpx_sse import ServerSentEvent, connect_sse
from sqlalchemy.orm import Session

from app.db.engine import make_engine
from app.services import keys
from tests.integration.conftest import Process, System, logged_events
from tests.integration.test_api_process import wait_until_serving
from tests.support.serving import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SystemFactory = Callable[..., System]
RUNS = 8
# Sampling of about a second per run, so that runs report progress and the sweep is still
# running when the client hangs up.
SLOW_SWEEP = {
    "workflow": "sd15-txt2img",
    "base": {"steps": 20, "width": 64, "height": 64},
    "axes": [{"param": "seed", "values": f"1-{RUNS}"}],
}
STREAM_SETTINGS = {"EVENTS_POLL_S": "0.1", "EVENTS_PING_S": "1", "PROGRESS_INTERVAL_S": "0.3"}


def _api_process(system: System) -> tuple[Process, str]:
    port = free_port()
    system.env.update(STREAM_SETTINGS)
    process = system.start("api", "app.serve", "--port", str(port), "--log-level", "warning")
    base_url = f"http://127.0.0.1:{port}"
    wait_until_serving(base_url, process)
    return process, base_url


def _client(system: System, base_url: str) -> Iterator[httpx.Client]:
    engine = make_engine(system.settings.database_url)
    try:
        with Session(engine) as session:
            key = keys.create_key(session, "it").plaintext
    finally:
        engine.dispose()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as client:
        yield client


@pytest.fixture
def served(system_factory: SystemFactory) -> Iterator[tuple[System, Process, httpx.Client]]:
    # The worker samples progress as often as the stream settings say, so a run's progress
    # shows while the sweep still has runs to go.
    system = system_factory("--step-ms", "100", timings=STREAM_SETTINGS)
    process, base_url = _api_process(system)
    for client in _client(system, base_url):
        yield system, process, client


def _frames(frames: list[ServerSentEvent]) -> list[tuple[int, str]]:
    """(id, type) of each event frame. httpx-sse shows a heartbeat (a `: ping` comment) as
    an empty `message` event carrying the last id: skipped."""
    found = []
    for frame in frames:
        if not frame.data:
            continue
        payload = json.loads(frame.data)
        assert (payload["id"], payload["type"]) == (int(frame.id), frame.event)
        found.append((payload["id"], payload["type"]))
    return found


def test_a_client_reconnecting_mid_sweep_gets_every_event_once_in_order(
    served: tuple[System, Process, httpx.Client],
) -> None:
    system, _, client = served
    created = client.post("/v1/sweeps", json=SLOW_SWEEP)
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    url = f"/v1/sweeps/{sweep_id}/events"

    first: list[ServerSentEvent] = []
    with connect_sse(client, "GET", url) as source:
        for frame in source.iter_sse():
            first.append(frame)
            if frame.event == "run.progress":
                break  # hang up mid-run
    status = client.get(f"/v1/sweeps/{sweep_id}").json()["status"]
    assert status == "running", system.logs()
    time.sleep(1.0)  # events recorded while nobody listens

    with connect_sse(client, "GET", url, headers={"Last-Event-ID": first[-1].id}) as source:
        rest = list(source.iter_sse())  # to the stream's own end

    streamed = _frames(first) + _frames(rest)
    logged = logged_events(system, sweep_id)
    assert streamed == logged, system.logs()
    kinds = [kind for _, kind in streamed]
    assert kinds[0] == "sweep.queued"
    assert kinds[-2:] == ["grid.ready", "sweep.finished"]
    assert kinds.count("run.started") == RUNS
    assert kinds.count("run.succeeded") == RUNS
    assert "run.progress" in kinds
    finished = [frame for frame in rest if frame.data][-1]
    assert json.loads(finished.data)["data"]["status"] == "succeeded"


def test_sigterm_ends_open_streams_and_the_api_exits(
    served: tuple[System, Process, httpx.Client],
) -> None:
    _, process, client = served
    ended = threading.Event()

    def follow() -> None:
        try:
            with connect_sse(client, "GET", "/v1/events") as source:
                for _ in source.iter_sse():
                    pass
        except httpx.HTTPError:
            pass  # a connection cut rather than ended still counts as closed
        ended.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    time.sleep(1.5)  # connected and idle (pings only)
    assert not ended.is_set()
    stopped_at = time.monotonic()
    process.popen.send_signal(signal.SIGTERM)
    assert ended.wait(10), process.log()
    assert process.popen.wait(timeout=15) in (0, -signal.SIGTERM), process.log()
    assert time.monotonic() - stopped_at < 10
