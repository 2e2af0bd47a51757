"""The event streams over real HTTP (uvicorn in a thread): the frame format, resuming with
`Last-Event-ID` or `?after=`, a finished sweep's stream ending, the team stream following
new events of its own team only, heartbeats, and the errors."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from uuid import uuid4

import httpx
import pytest
from fastapi import FastAPI
from httpx_sse import ServerSentEvent, connect_sse

from app.main import create_app
from app.settings import Settings
from tests.api.conftest import mint_key
from tests.api.test_sweeps_api import EXAMPLE
from tests.support.serving import serve

READ_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def fast_app(settings: Settings) -> Iterator[FastAPI]:
    quick = settings.model_copy(update={"events_poll_s": 0.05, "events_ping_s": 0.3})
    application = create_app(quick)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="module")
def base_url(fast_app: FastAPI) -> Iterator[str]:
    with serve(fast_app) as url:
        yield url


def _client(fast_app: FastAPI, base_url: str) -> httpx.Client:
    key = mint_key(fast_app, f"team-{uuid4().hex[:8]}")
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.Client(base_url=base_url, headers=headers, timeout=READ_TIMEOUT_S)


@pytest.fixture
def client(fast_app: FastAPI, base_url: str) -> Iterator[httpx.Client]:
    with _client(fast_app, base_url) as made:
        yield made


def _cancelled_sweep(client: httpx.Client) -> str:
    created = client.post("/v1/sweeps", json=EXAMPLE)
    assert created.status_code == 201, created.text
    sweep_id: str = created.json()["id"]
    assert client.post(f"/v1/sweeps/{sweep_id}/cancel").status_code == 200
    return sweep_id


def _read_all(client: httpx.Client, url: str, **options: Any) -> list[ServerSentEvent]:
    """Every frame of a stream that ends by itself (the read timeout fails one that does not)."""
    with connect_sse(client, "GET", url, **options) as source:
        assert source.response.status_code == 200
        assert source.response.headers["content-type"].startswith("text/event-stream")
        return list(source.iter_sse())


def test_a_finished_sweeps_stream_sends_its_whole_log_and_ends(client: httpx.Client) -> None:
    sweep_id = _cancelled_sweep(client)
    frames = _read_all(client, f"/v1/sweeps/{sweep_id}/events")
    assert [f.event for f in frames] == ["sweep.queued", "sweep.cancelled", "sweep.finished"]
    payloads = [json.loads(f.data) for f in frames]
    assert [p["id"] for p in payloads] == [int(f.id) for f in frames]
    assert [p["id"] for p in payloads] == sorted({p["id"] for p in payloads})
    queued, cancelled, finished = payloads
    assert set(queued) == {"id", "type", "sweep_id", "run_index", "created_at", "data"}
    assert queued["sweep_id"] == sweep_id
    assert queued["run_index"] is None
    assert queued["data"] == {"runs": 12, "workflow": "demo-noise", "priority": 50}
    assert cancelled["data"] == {"runs_cancelled": 12}
    assert finished["data"]["status"] == "cancelled"
    assert finished["data"]["counts"]["cancelled"] == 12


def test_a_stream_resumes_after_last_event_id_or_after(client: httpx.Client) -> None:
    sweep_id = _cancelled_sweep(client)
    url = f"/v1/sweeps/{sweep_id}/events"
    first, second, third = (int(f.id) for f in _read_all(client, url))

    by_header = _read_all(client, url, headers={"Last-Event-ID": str(first)})
    assert [int(f.id) for f in by_header] == [second, third]
    by_query = _read_all(client, url, params={"after": second})
    assert [int(f.id) for f in by_query] == [third]
    # A reconnect's header is newer than the URL it reconnects to.
    both = _read_all(client, url, params={"after": 0}, headers={"Last-Event-ID": str(second)})
    assert [int(f.id) for f in both] == [third]
    # Nothing after the cursor of an ended sweep: the stream ends at once, empty.
    assert _read_all(client, url, headers={"Last-Event-ID": str(third)}) == []


def test_the_team_stream_follows_new_events_of_its_own_team_only(
    fast_app: FastAPI, base_url: str, client: httpx.Client
) -> None:
    with _client(fast_app, base_url) as other:
        _cancelled_sweep(other)  # before the stream opens: not sent (it starts at now)
        seen: list[ServerSentEvent] = []
        with connect_sse(client, "GET", "/v1/events") as source:
            assert source.response.status_code == 200
            mine: list[str] = []

            # Recorded once the stream is open, with another team's events in between.
            def submit_both() -> None:
                _cancelled_sweep(other)
                mine.append(_cancelled_sweep(client))

            submitter = threading.Thread(target=submit_both)
            submitter.start()
            for frame in source.iter_sse():
                seen.append(frame)
                if frame.event == "sweep.finished":
                    break
            submitter.join()
    assert [f.event for f in seen] == ["sweep.queued", "sweep.cancelled", "sweep.finished"]
    assert {json.loads(f.data)["sweep_id"] for f in seen} == set(mine)


def test_an_idle_stream_sends_heartbeats(client: httpx.Client) -> None:
    created = client.post("/v1/sweeps", json={**EXAMPLE, "paused": True})
    assert created.status_code == 201, created.text
    sweep_id = created.json()["id"]
    after = max(int(f.id) for f in _first_frames(client, sweep_id, 2))
    url = f"/v1/sweeps/{sweep_id}/events"
    with client.stream("GET", url, headers={"Last-Event-ID": str(after)}) as response:
        lines = response.iter_lines()
        assert next(lines).startswith(": ping")


def _first_frames(client: httpx.Client, sweep_id: str, count: int) -> list[ServerSentEvent]:
    with connect_sse(client, "GET", f"/v1/sweeps/{sweep_id}/events") as source:
        frames = []
        for frame in source.iter_sse():
            frames.append(frame)
            if len(frames) == count:
                return frames
    raise AssertionError("the stream ended early")


def test_another_teams_sweep_is_404_and_a_bad_resume_id_is_422(
    fast_app: FastAPI, base_url: str, client: httpx.Client
) -> None:
    sweep_id = _cancelled_sweep(client)
    with _client(fast_app, base_url) as other:
        assert other.get(f"/v1/sweeps/{sweep_id}/events").status_code == 404
    response = client.get(f"/v1/sweeps/{sweep_id}/events", headers={"Last-Event-ID": "soon"})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["header", "Last-Event-ID"]
    response = client.get(f"/v1/sweeps/{sweep_id}/events", params={"after": -1})
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "after"]
