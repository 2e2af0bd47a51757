"""Following a sweep until it ends: its event stream (`GET /v1/sweeps/{id}/events`, Server-Sent
Events), or polling `GET /v1/sweeps/{id}` once a second where the API has no stream (404).

The stream is resumed with `Last-Event-ID` when it drops, a bounded number of times with a
growing pause; when it keeps dropping, polling takes over, so a flaky proxy slows the display
but never fails a farm job that waits on the sweep.

A sweep's stream starts with its whole history (so connecting to an ended sweep still ends
with its `sweep.finished`); the counts shown are taken from the events once they have caught
up with the snapshot read first, and from the snapshot before, so the bar never goes back.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

from app.client.api import ApiError, SweepApi, refusal

FINAL_STATUSES = frozenset({"succeeded", "partial", "failed", "cancelled"})
ENDED_RUN_STATUSES = ("succeeded", "failed", "cancelled")
POLL_INTERVAL_S = 1.0
# Polls in a row that may find the API unreachable (each retried for seconds) before giving up.
UNREACHABLE_POLLS = 60
RECONNECTS = 5
RECONNECT_BACKOFF_S = 0.5
MAX_RECONNECT_PAUSE_S = 8.0
# Above the server's heartbeat interval: a connection silent for this long is dead.
STREAM_READ_TIMEOUT_S = 60.0
RUN_STATUS_OF_EVENT = {
    "run.queued": "queued",
    "run.started": "running",
    "run.succeeded": "succeeded",
    "run.failed": "failed",
    "run.cancelled": "cancelled",
}
SWEEP_STATUS_OF_EVENT = {
    "sweep.queued": "queued",
    "sweep.started": "running",
    "sweep.paused": "paused",
    "sweep.resumed": "running",
    "sweep.reopened": "running",
    "sweep.finalizing": "finalizing",
}


class EventsUnavailable(Exception):
    """This API serves no event stream: follow by polling instead."""


@dataclass
class SweepProgress:
    """What the display shows: the sweep's status, its runs by status, and the latest news."""

    sweep_id: str
    status: str
    total: int
    counts: dict[str, int]
    note: str = ""
    via: str = "events"
    run_states: dict[int, str] = field(default_factory=dict, repr=False)
    snapshot_done: int = 0
    last_event_id: str | None = None

    @classmethod
    def from_sweep(cls, sweep: dict[str, Any]) -> SweepProgress:
        counts = {str(k): int(v) for k, v in sweep.get("counts", {}).items()}
        progress = cls(str(sweep["id"]), str(sweep["status"]), int(sweep["total"]), counts)
        progress.snapshot_done = progress.done
        return progress

    @property
    def done(self) -> int:
        return sum(self.counts.get(status, 0) for status in ENDED_RUN_STATUSES)

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    def apply(self, event_type: str, payload: dict[str, Any]) -> None:
        """One event from the stream (its JSON `data`: id, type, sweep_id, run_index, data)."""
        data = payload.get("data") or {}
        index = payload.get("run_index")
        if event_type in SWEEP_STATUS_OF_EVENT:
            self.status = SWEEP_STATUS_OF_EVENT[event_type]
        if event_type == "sweep.finished":
            self.status = str(data.get("status", self.status))
            self.counts = {str(k): int(v) for k, v in data.get("counts", self.counts).items()}
        elif isinstance(index, int) and event_type in RUN_STATUS_OF_EVENT:
            self.run_states[index] = RUN_STATUS_OF_EVENT[event_type]
            self.total = max(self.total, index + 1)
            self._count_from_events()
        self.note = _note(event_type, index, data) or self.note

    def _count_from_events(self) -> None:
        counts: dict[str, int] = {}
        for status in self.run_states.values():
            counts[status] = counts.get(status, 0) + 1
        if sum(counts.get(s, 0) for s in ENDED_RUN_STATUSES) >= self.snapshot_done:
            counts["queued"] = counts.get("queued", 0) + self.total - len(self.run_states)
            self.counts = counts


def _note(event_type: str, index: object, data: dict[str, Any]) -> str:
    if event_type == "run.progress":
        return f"run {index}: step {data.get('value')}/{data.get('max')}"
    if event_type == "run.failed":
        return f"run {index} failed: {data.get('node_type') or ''} {data.get('message') or ''}"
    if event_type == "run.started":
        return f"run {index} started on {data.get('instance')}"
    if event_type == "grid.ready":
        return "grid ready"
    if event_type.startswith("sweep."):
        return event_type.removeprefix("sweep.")
    return ""


Show = Callable[[SweepProgress], None]


def follow_sweep(api: SweepApi, sweep_id: str, show: Show) -> SweepProgress:
    """Shows the sweep's progress until it has ended; returns its last state."""
    progress = SweepProgress.from_sweep(api.sweep(sweep_id))
    show(progress)
    if progress.final:
        return progress
    try:
        return follow_events(api, progress, show)
    except EventsUnavailable:
        progress.via = "polling"
        return poll(api, progress, show)


def follow_events(api: SweepApi, progress: SweepProgress, show: Show) -> SweepProgress:
    """Reads the stream, resuming after drops; hands over to polling when it keeps dropping."""
    drops = 0
    while True:
        received_before = progress.last_event_id
        with contextlib.suppress(httpx.TransportError, SSEError):
            _read_stream(api, progress, show)
        if progress.final:
            return progress
        drops = 0 if progress.last_event_id != received_before else drops + 1
        if drops > RECONNECTS:
            progress.via = "polling"
            return poll(api, progress, show)
        time.sleep(min(RECONNECT_BACKOFF_S * 2**drops, MAX_RECONNECT_PAUSE_S))


def _read_stream(api: SweepApi, progress: SweepProgress, show: Show) -> None:
    """Applies events until the stream ends, keeping the last id seen in `progress`, so a
    drop mid-stream loses nothing already applied."""
    path = f"/v1/sweeps/{progress.sweep_id}/events"
    last_id = progress.last_event_id
    headers = {"Last-Event-ID": last_id} if last_id else {}
    timeout = httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT_S)
    with connect_sse(api.http, "GET", path, headers=headers, timeout=timeout) as source:
        response = source.response
        if response.status_code == 404 and "event-stream" not in response.headers.get(
            "content-type", ""
        ):
            response.read()
            if _no_route(response):
                raise EventsUnavailable
        if response.status_code >= 400:
            response.read()
            raise refusal("GET", path, response)
        for event in source.iter_sse():
            if not event.event or event.event == "message":
                continue  # heartbeats
            progress.apply(event.event, json.loads(event.data))
            if event.id:
                progress.last_event_id = event.id
            show(progress)
        # The server ends the stream after the sweep's last `sweep.finished`. Not stopping at
        # the first one read: a sweep's history may hold a finish, a reopen (a retry) and more.


def _no_route(response: httpx.Response) -> bool:
    # FastAPI's answer for a path it does not serve is {"detail": "Not Found"}; a sweep that
    # is not there (or is another team's) is {"detail": "no sweep ..."} and stays an error.
    try:
        return bool(response.json().get("detail") == "Not Found")
    except (ValueError, AttributeError):
        return True


def poll(api: SweepApi, progress: SweepProgress, show: Show) -> SweepProgress:
    """`GET /v1/sweeps/{id}` every POLL_INTERVAL_S until the sweep has ended."""
    unreachable = 0
    while not progress.final:
        time.sleep(POLL_INTERVAL_S)
        try:
            sweep = api.sweep(progress.sweep_id)
        except ApiError as error:
            unreachable += 1
            if error.status != 0 or unreachable > UNREACHABLE_POLLS:
                raise
            continue  # down for a while (each poll retried already): keep waiting
        unreachable = 0
        latest = SweepProgress.from_sweep(sweep)
        progress.status, progress.total, progress.counts = (
            latest.status,
            latest.total,
            latest.counts,
        )
        show(progress)
    return progress
