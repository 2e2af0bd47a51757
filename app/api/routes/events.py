"""HTTP routes of the event log as Server-Sent Events: one sweep's events, or every event of
the caller's team. The streaming loop is `app.services.event_streams`; a route only checks
the sweep, settles the cursor, and lets go of its database session before streaming, so an
open stream holds no connection. Another team's sweep is a 404, never a 403.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse

from app.api.deps import SessionDep, SettingsDep, TeamDep
from app.api.errors import NotFound, responses
from app.services.event_streams import StreamScope, follow, live_cursor
from app.settings import Settings
from app.stores import sweeps as sweep_store

router = APIRouter(tags=["events"])

_FRAMES = """Each event is one frame:

```
id: 1042
event: run.succeeded
data: {"id":1042,"type":"run.succeeded","sweep_id":"…","run_index":3,"created_at":"…","data":{…}}
```

`data` is one JSON object: `id` (as the `id:` line), `type` (as the `event:` line),
`sweep_id`, `run_index` (null for a sweep's own events), `created_at` (ISO 8601) and `data`,
whose members depend on the type (see the README's event table). Ids grow in commit order.
To resume, send the last id seen as the `Last-Event-ID` header (browsers' EventSource does
this by itself) or as `?after=`; the stream then sends exactly the events after it. A comment
line (`: ping`) is sent every 15 s while nothing happens, so proxies keep the connection."""

_STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A `text/event-stream` of events, oldest first.",
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'id: 7\nevent: sweep.started\ndata: {"id":7,"type":"sweep.started",'
                '"sweep_id":"0193c8f0-5a2b-7c3d-8e4f-a1b2c3d4e5f6","run_index":null,'
                '"created_at":"2026-12-07T01:02:03.456789+00:00","data":{}}\n\n',
            }
        },
    },
}

LastEventId = Annotated[
    int | None,
    Header(
        alias="Last-Event-ID",
        ge=0,
        le=2**63 - 1,
        description="Resume after this event id (what EventSource sends on a reconnect).",
    ),
]
After = Annotated[
    int | None,
    Query(
        ge=0,
        le=2**63 - 1,
        description="Resume after this event id, for clients that cannot set headers; "
        "`Last-Event-ID` wins when both are sent.",
    ),
]


@router.get(
    "/sweeps/{sweep_id}/events",
    response_class=EventSourceResponse,
    responses={**_STREAM_RESPONSES, **responses(NotFound)},
    summary="Follow a sweep's events (Server-Sent Events)",
    description="Every event of the sweep, from its first (or after the resume id), then each "
    "new one as it is recorded. The stream ends by itself once the sweep has ended and its "
    "`sweep.finished` was sent (at once for an ended sweep with nothing after the resume id); "
    "a sweep reopened meanwhile (a retry, an extension) keeps it going.\n\n" + _FRAMES,
)
def sweep_events(
    sweep_id: UUID,
    request: Request,
    session: SessionDep,
    team_id: TeamDep,
    settings: SettingsDep,
    last_event_id: LastEventId = None,
    after: After = None,
) -> EventSourceResponse:
    found = sweep_store.get_sweep(session, sweep_id, team_id)
    session.close()  # the stream reads in sessions of its own; this one holds nothing more
    if found is None:
        raise NotFound(f"no sweep {sweep_id}")
    cursor = _cursor(last_event_id, after)
    return _stream(request, settings, StreamScope(team_id, sweep_id), cursor or 0)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses=_STREAM_RESPONSES,
    summary="Follow every event of your team's sweeps (Server-Sent Events)",
    description="Events of all the team's sweeps as they are recorded, from now on (or after "
    "the resume id: `?after=0` replays all the log still holds). The stream never ends by "
    "itself.\n\n" + _FRAMES,
)
def team_events(
    request: Request,
    session: SessionDep,
    team_id: TeamDep,
    settings: SettingsDep,
    last_event_id: LastEventId = None,
    after: After = None,
) -> EventSourceResponse:
    cursor = _cursor(last_event_id, after)
    if cursor is None:
        cursor = live_cursor(session)
    session.close()
    return _stream(request, settings, StreamScope(team_id), cursor)


def _cursor(last_event_id: int | None, after: int | None) -> int | None:
    """The resume id: the header's (a reconnect's, newer than a URL's) before `?after=`."""
    return last_event_id if last_event_id is not None else after


def _stream(
    request: Request, settings: Settings, scope: StreamScope, cursor: int
) -> EventSourceResponse:
    sessions = request.app.state.session_factory
    return EventSourceResponse(
        follow(sessions, scope, cursor, settings.events_poll_s),
        ping=settings.events_ping_s,
        # No proxy buffering (nginx) and no caching: each frame must reach the client as sent.
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
