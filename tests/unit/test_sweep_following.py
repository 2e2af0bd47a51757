"""Following a sweep: the event stream's wire format applied to the display, a dropped stream
resumed with Last-Event-ID, and polling where the API has no stream. The API is an httpx
MockTransport speaking the documented format, so these run without the events endpoint."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.cli_commands.common import exit_code_for
from app.client import follow
from app.client.api import ApiError, SweepApi
from app.client.config import ClientConfig
from app.client.follow import SweepProgress, follow_sweep

SWEEP_ID = "5f0c1b7e-0000-4000-8000-000000000001"
SWEEP_PATH = f"/v1/sweeps/{SWEEP_ID}"


@pytest.fixture(autouse=True)
def no_pauses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "POLL_INTERVAL_S", 0.0)
    monkeypatch.setattr(follow, "RECONNECT_BACKOFF_S", 0.0)


def sweep(status: str, counts: dict[str, int], total: int = 3) -> dict[str, Any]:
    return {"id": SWEEP_ID, "status": status, "total": total, "counts": counts}


def frame(event_id: int, event_type: str, run_index: int | None = None, **data: Any) -> bytes:
    payload = {
        "id": event_id,
        "type": event_type,
        "sweep_id": SWEEP_ID,
        "run_index": run_index,
        "created_at": "2026-12-07T00:00:00Z",
        "data": data,
    }
    return f"id: {event_id}\nevent: {event_type}\ndata: {json.dumps(payload)}\n\n".encode()


HISTORY = [
    frame(1, "sweep.queued", runs=3, workflow="demo-noise", priority=50),
    frame(2, "sweep.started"),
    frame(3, "run.started", 0, instance="a", prompt_id="p0", attempt=1),
    frame(4, "run.succeeded", 0, outputs=["a.png"]),
    frame(5, "run.started", 1, instance="a", prompt_id="p1", attempt=1),
    frame(6, "run.progress", 1, node="3", value=4, max=20),
    frame(7, "run.failed", 1, node_id="3", node_type="KSampler", message="boom"),
    frame(8, "run.started", 2, instance="b", prompt_id="p2", attempt=1),
    frame(9, "run.succeeded", 2, outputs=["c.png"]),
    frame(10, "sweep.finalizing"),
    frame(11, "sweep.finished", status="partial", counts={"succeeded": 2, "failed": 1}),
]


def stream(frames: list[bytes], drop: bool = False) -> Iterator[bytes]:
    yield b": ping\n\n"
    yield from frames
    if drop:
        raise httpx.ReadError("connection reset by peer")


def api_with(handler: Any) -> SweepApi:
    return SweepApi(
        ClientConfig("http://api.test", "csk_k"), transport=httpx.MockTransport(handler)
    )


def event_stream(frames: Iterator[bytes]) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=frames)


def test_events_update_the_counts_and_the_finish_gives_the_outcome() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == SWEEP_PATH:
            return httpx.Response(200, json=sweep("running", {"queued": 3}))
        return event_stream(stream(HISTORY))

    shown: list[tuple[str, int, str]] = []
    final = follow_sweep(
        api_with(handler), SWEEP_ID, lambda p: shown.append((p.status, p.done, p.note))
    )
    assert (final.status, final.counts, final.via) == (
        "partial",
        {"succeeded": 2, "failed": 1},
        "events",
    )
    assert ("running", 1, "run 1: step 4/20") in shown
    assert ("running", 2, "run 1 failed: KSampler boom") in shown
    assert exit_code_for(final.status) == 1


def test_a_finish_followed_by_a_reopen_in_the_history_is_not_the_end() -> None:
    reopened = [
        frame(12, "sweep.reopened", runs=1),
        frame(13, "run.queued", 1, reason="retry"),
        frame(14, "run.started", 1, instance="a", prompt_id="p3", attempt=2),
        frame(15, "run.succeeded", 1, outputs=["b.png"]),
        frame(16, "sweep.finished", status="succeeded", counts={"succeeded": 3}),
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == SWEEP_PATH:
            return httpx.Response(200, json=sweep("running", {"queued": 1, "succeeded": 2}))
        return event_stream(stream(HISTORY + reopened))

    statuses: list[str] = []
    final = follow_sweep(api_with(handler), SWEEP_ID, lambda p: statuses.append(p.status))
    assert (final.status, final.last_event_id) == ("succeeded", "16")
    assert statuses.index("partial") < statuses.index("running", statuses.index("partial"))


def test_a_dropped_stream_resumes_after_the_last_event_it_delivered() -> None:
    asked_from: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == SWEEP_PATH:
            return httpx.Response(200, json=sweep("running", {"queued": 3}))
        resume_from = request.headers.get("Last-Event-ID")
        asked_from.append(resume_from)
        if resume_from is None:
            return event_stream(stream(HISTORY[:5], drop=True))
        return event_stream(stream(HISTORY[int(resume_from) :]))

    seen: list[str] = []
    final = follow_sweep(api_with(handler), SWEEP_ID, lambda p: seen.append(p.note))
    assert asked_from == [None, "5"]
    assert final.status == "partial"
    assert seen.count("run 1 failed: KSampler boom") == 1


def test_a_stream_that_keeps_dropping_hands_over_to_polling() -> None:
    polls = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal polls
        if request.url.path == SWEEP_PATH:
            polls += 1
            return httpx.Response(200, json=sweep("running" if polls < 3 else "cancelled", {}))
        return event_stream(stream([], drop=True))

    final = follow_sweep(api_with(handler), SWEEP_ID, lambda _: None)
    assert (final.status, final.via) == ("cancelled", "polling")
    assert exit_code_for(final.status) == 2


def test_without_an_events_route_the_sweep_is_polled_until_it_ends() -> None:
    answers = iter(
        [
            sweep("running", {"queued": 2, "running": 1}),
            sweep("running", {"succeeded": 1, "running": 2}),
            sweep("succeeded", {"succeeded": 3}),
        ]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(404, json={"detail": "Not Found"})
        return httpx.Response(200, json=next(answers))

    done: list[int] = []
    final = follow_sweep(api_with(handler), SWEEP_ID, lambda p: done.append(p.done))
    assert (final.status, final.via, done) == ("succeeded", "polling", [0, 1, 3])
    assert exit_code_for(final.status) == 0


def test_a_refused_stream_is_the_apis_error_not_a_reason_to_poll() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == SWEEP_PATH:
            return httpx.Response(200, json=sweep("running", {}))
        return httpx.Response(401, json={"detail": "unknown or revoked API key"})

    with pytest.raises(ApiError) as refused:
        follow_sweep(api_with(handler), SWEEP_ID, lambda _: None)
    assert (refused.value.status, refused.value.detail) == (401, "unknown or revoked API key")


def test_counts_from_a_snapshot_are_kept_until_the_replayed_events_catch_up() -> None:
    progress = SweepProgress.from_sweep(sweep("running", {"succeeded": 2, "running": 1}))
    progress.apply("run.succeeded", {"run_index": 0, "data": {}})
    assert progress.counts == {"succeeded": 2, "running": 1}
    progress.apply("run.succeeded", {"run_index": 1, "data": {}})
    assert progress.counts == {"succeeded": 2, "queued": 1}


@pytest.mark.parametrize(
    ("status", "code"), [("succeeded", 0), ("partial", 1), ("failed", 1), ("cancelled", 2)]
)
def test_each_final_status_has_its_exit_code(status: str, code: int) -> None:
    assert exit_code_for(status) == code
