"""The event log's store: events recorded in the transaction of the change they describe,
read back in commit order, pruned by age.

`record` only queues events on the session; they are inserted at its commit, as the last
statements of the transaction, under a transaction-scoped advisory lock on Postgres. The
lock makes ids grow in commit order: a transaction takes its ids only after every earlier
event-writing transaction has committed, so a reader that saw id N can never later see a
smaller one appear (a plain sequence would allow that, and a stream resuming after N would
silently skip it). The insert takes no row lock (the table has no foreign keys), so holding
the advisory lock cannot deadlock with the rows the transaction changed. SQLite serializes
writers anyway.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy import event as orm_event
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Event
from app.domain.events import EventType, NewEvent, StoredEvent
from app.stores import webhook_outbox

# The key of the advisory lock that orders event commits (an arbitrary constant of ours).
EVENTS_LOCK_KEY = 0x5EE7_E7E5
_PENDING = "comfy_sweep.pending_events"


def record(session: Session, *events: NewEvent) -> None:
    """Queue events to be written when `session` commits, in the same transaction."""
    # Begun here so that a rollback before any other statement still discards them.
    if not session.in_transaction():
        session.begin()
    session.info.setdefault(_PENDING, []).extend(events)


@orm_event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    pending: list[NewEvent] | None = session.info.pop(_PENDING, None)
    if not pending:
        return
    # The transaction's own changes first: their row locks are taken before the advisory
    # lock, never while holding it.
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        stored, subscribers = _insert_locked(session, pending)
    else:
        stored, subscribers = _insert_portable(session, pending)
    # The webhook outbox, in this same transaction: a delivery is owed exactly when its
    # event committed. No row locks, so it is safe under the advisory lock.
    webhook_outbox.enqueue(session, stored, subscribers)


# Every event-writing transaction runs this, twice per run: the lock, the insert and the read
# of the webhook endpoints that may want the events are one round trip, written out once so
# no statement is built or compiled per call. The INSERT's rows come from the lock's row, so
# ids are drawn only once the lock is held; `ORDER BY n` draws them in the events' order. The
# events travel as one JSON array: psycopg adapts a string in a fraction of what five typed
# arrays (one per column) cost it in Python on every commit.
_INSERT_LOCKED = """
WITH locked AS (SELECT pg_advisory_xact_lock(%(lock_key)s)),
new AS (
    INSERT INTO events (created_at, type, team_id, sweep_id, run_index, data)
    SELECT %(created_at)s, e.event->>'type', (e.event->>'team_id')::uuid,
        (e.event->>'sweep_id')::uuid, (e.event->>'run_index')::int, e.event->'data'
    FROM locked, jsonb_array_elements(%(events)s::jsonb) WITH ORDINALITY AS e(event, n)
    ORDER BY e.n
    RETURNING id, team_id, sweep_id
)
SELECT new.id, endpoint.id, endpoint.team_id, endpoint.sweep_id, endpoint.events
FROM new LEFT JOIN webhook_endpoints AS endpoint
    ON endpoint.enabled AND endpoint.team_id = new.team_id
    AND (endpoint.sweep_id IS NULL OR endpoint.sweep_id = new.sweep_id)
ORDER BY new.id
"""


def _insert_locked(
    session: Session, pending: list[NewEvent]
) -> tuple[list[StoredEvent], list[webhook_outbox.Subscriber]]:
    created_at = utc_now()
    rows = session.connection().exec_driver_sql(
        _INSERT_LOCKED,
        {
            "lock_key": EVENTS_LOCK_KEY,
            "created_at": created_at,
            "events": json.dumps([_as_json(new) for new in pending]),
        },
    )
    ids: list[int] = []
    subscribers: dict[UUID, webhook_outbox.Subscriber] = {}
    for event_id, endpoint_id, team_id, sweep_id, events in rows:
        if not ids or ids[-1] != event_id:
            ids.append(event_id)
        if endpoint_id is not None:
            subscribers[endpoint_id] = webhook_outbox.Subscriber(
                endpoint_id, team_id, sweep_id, frozenset(events)
            )
    stored = [
        _stored_new(event_id, created_at, new) for event_id, new in zip(ids, pending, strict=True)
    ]
    return stored, list(subscribers.values())


def _as_json(new: NewEvent) -> dict[str, Any]:
    return {
        "type": str(new.type),
        "team_id": str(new.team_id),
        "sweep_id": str(new.sweep_id),
        "run_index": new.run_index,
        "data": dict(new.data),
    }


def _insert_portable(
    session: Session, pending: list[NewEvent]
) -> tuple[list[StoredEvent], list[webhook_outbox.Subscriber]]:
    """SQLite: writers are serialized by the database itself, so no lock is needed."""
    subscribers = webhook_outbox.subscribers(session, pending)
    inserted = session.execute(
        sa.insert(Event).returning(Event.id, Event.created_at, sort_by_parameter_order=True),
        [
            {
                "type": str(new.type),
                "team_id": new.team_id,
                "sweep_id": new.sweep_id,
                "run_index": new.run_index,
                "data": dict(new.data),
            }
            for new in pending
        ],
    ).all()
    stored = [
        _stored_new(row.id, row.created_at, new) for new, row in zip(pending, inserted, strict=True)
    ]
    return stored, subscribers


def _stored_new(event_id: int, created_at: datetime, new: NewEvent) -> StoredEvent:
    return StoredEvent(
        id=event_id,
        created_at=created_at,
        type=new.type,
        team_id=new.team_id,
        sweep_id=new.sweep_id,
        run_index=new.run_index,
        data=new.data,
    )


@orm_event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction: Any) -> None:
    # Events of a change that was rolled back never happened.
    session.info.pop(_PENDING, None)


def after(
    session: Session,
    *,
    team_id: UUID,
    after_id: int,
    limit: int,
    sweep_id: UUID | None = None,
) -> list[StoredEvent]:
    """The team's events (or one sweep's) with ids above `after_id`, oldest first."""
    query = sa.select(Event).where(Event.id > after_id, Event.team_id == team_id)
    if sweep_id is not None:
        query = query.where(Event.sweep_id == sweep_id)
    rows = session.scalars(query.order_by(Event.id).limit(limit))
    return [_stored(row) for row in rows]


def last_id(session: Session) -> int:
    """The newest event's id, 0 when the log is empty."""
    return session.scalar(sa.select(sa.func.coalesce(sa.func.max(Event.id), 0))) or 0


def prune_older_than(session: Session, cutoff: datetime, limit: int | None = None) -> int:
    """Delete events recorded before `cutoff`, at most `limit` of them (the oldest); how
    many were deleted."""
    old = Event.created_at < cutoff
    if limit is not None:
        oldest = sa.select(Event.id).where(old).order_by(Event.created_at, Event.id).limit(limit)
        old = Event.id.in_(oldest.scalar_subquery())
    result = session.execute(sa.delete(Event).where(old))
    return int(getattr(result, "rowcount", 0) or 0)


def _stored(row: Event) -> StoredEvent:
    return StoredEvent(
        id=row.id,
        created_at=row.created_at,
        type=EventType(row.type),
        team_id=row.team_id,
        sweep_id=row.sweep_id,
        run_index=row.run_index,
        data=row.data,
    )
