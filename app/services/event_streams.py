"""Following the event log as a stream: the loop behind `GET /v1/events` and
`GET /v1/sweeps/{id}/events`.

The log is read by short polling, each poll in a session of its own that is closed before the
stream waits again, so an idle stream holds no pooled connection (the API's pool is as small
as its admitted concurrency, issue #12). Polls run on worker threads, at most
`POLLING_THREADS` at once per process, whatever the number of streams: the engine's pool has
that many connections more than the admitted requests need (`app.main`), so a stream never
waits for a connection a request holds, nor a request for one a stream holds.

A cursor is an event id. Ids grow in commit order (`app.stores.events`), so a stream that
sent every event up to N and resumes after N misses none and repeats none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from uuid import UUID
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread
from sqlalchemy.orm import Session
from sse_starlette import ServerSentEvent

from app.domain.events import STREAM_END_TYPES, StoredEvent
from app.domain.states import FINAL_SWEEP_STATUSES
from app.stores import events, sweeps

POLLING_THREADS = 2
BATCH = 500  # events read per poll; a backlog is read in batches without waiting between them

SessionFactory = Callable[[], Session]


@dataclass(frozen=True, slots=True)
class StreamScope:
    team_id: UUID
    sweep_id: UUID | None = None  # None: every sweep of the team, and the stream never ends


@dataclass(frozen=True, slots=True)
class _Poll:
    found: list[StoredEvent]
    ended: bool  # the sweep was final before the events were read


# One limiter per event loop: anyio's are bound to the loop that made them, and tests run
# an app in more than one.
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = WeakKeyDictionary()


def _poll_limiter() -> anyio.CapacityLimiter:
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(POLLING_THREADS)
    return limiter


def frame(event: StoredEvent) -> ServerSentEvent:
    """`id: <id>`, `event: <type>`, `data: <the event as one JSON object>`."""
    payload = {
        "id": event.id,
        "type": event.type.value,
        "sweep_id": str(event.sweep_id),
        "run_index": event.run_index,
        "created_at": event.created_at.isoformat(),
        "data": dict(event.data),
    }
    return ServerSentEvent(
        data=json.dumps(payload, separators=(",", ":")), event=event.type.value, id=str(event.id)
    )


async def follow(
    sessions: SessionFactory, scope: StreamScope, after_id: int, poll_s: float
) -> AsyncIterator[ServerSentEvent]:
    """Every event of `scope` after `after_id`, in order, as it is recorded. A sweep's stream
    ends once the sweep is final and every event before that was sent (its `sweep.finished`
    last, until a reopen); the team's stream ends only when the client goes."""
    cursor = after_id
    while True:
        poll = await anyio.to_thread.run_sync(
            _poll, sessions, scope, cursor, limiter=_poll_limiter()
        )
        for event in poll.found:
            yield frame(event)
            cursor = event.id
        if poll.found:
            if len(poll.found) == BATCH or poll.found[-1].type in STREAM_END_TYPES:
                continue  # more to read, or the end to confirm: no wait
        elif poll.ended:
            return
        await anyio.sleep(poll_s)


def _poll(sessions: SessionFactory, scope: StreamScope, cursor: int) -> _Poll:
    with sessions() as session:
        # The status first: a sweep final at that point had recorded its last event in the
        # same transaction, so the read that follows sees it.
        ended = scope.sweep_id is not None and _is_final(session, scope.sweep_id)
        found = events.after(
            session, team_id=scope.team_id, after_id=cursor, limit=BATCH, sweep_id=scope.sweep_id
        )
        session.rollback()
    return _Poll(found, ended)


def _is_final(session: Session, sweep_id: UUID) -> bool:
    status = sweeps.sweep_status(session, sweep_id)
    return status is None or status in FINAL_SWEEP_STATUSES


def live_cursor(session: Session) -> int:
    """Where a team stream that names no cursor starts: after the newest event, so it shows
    what happens from now on (`?after=0` replays what the log still holds)."""
    return events.last_id(session)
