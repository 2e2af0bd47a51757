"""The webhook outbox: deliveries queued in the transaction that records their events,
claimed by senders, and their attempts' results.

Every event-writing transaction (`app.stores.events`) reads the endpoints that could want
its events and queues their deliveries, so both are kept cheap and take no row lock: the read
is indexed and never `FOR UPDATE` (on Postgres it is part of the events' own INSERT
statement), and the delivery insert runs only when some endpoint wants an event (deliveries
have no foreign keys, so not even a key-share lock is taken).

Senders claim with `FOR UPDATE SKIP LOCKED` and push the claimed rows' due time ahead by a
lease, so several senders never post the same attempt and a sender that dies mid-way leaves
its deliveries due again when the lease ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import WebhookDelivery, WebhookEndpoint
from app.domain.events import NewEvent, StoredEvent

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
ALL_EVENTS = "*"


@dataclass(frozen=True, slots=True)
class Subscriber:
    """An enabled endpoint some of a transaction's events may be owed to."""

    id: UUID
    team_id: UUID
    sweep_id: UUID | None  # None: a team default
    events: frozenset[str]

    def wants(self, event: StoredEvent) -> bool:
        return (
            self.team_id == event.team_id
            and self.sweep_id in (None, event.sweep_id)
            and (ALL_EVENTS in self.events or str(event.type) in self.events)
        )


def subscribers(session: Session, events: Sequence[NewEvent]) -> list[Subscriber]:
    """The enabled endpoints that may want some of `events`: their teams' defaults and their
    sweeps' own. One indexed read, never `FOR UPDATE`."""
    if not events:
        return []
    endpoint = WebhookEndpoint
    wanted = sa.and_(
        endpoint.enabled,
        sa.or_(
            sa.and_(
                endpoint.sweep_id.is_(None),
                endpoint.team_id.in_({event.team_id for event in events}),
            ),
            endpoint.sweep_id.in_({event.sweep_id for event in events}),
        ),
    )
    rows = session.execute(
        sa.select(endpoint.id, endpoint.team_id, endpoint.sweep_id, endpoint.events).where(wanted)
    )
    return [Subscriber(r.id, r.team_id, r.sweep_id, frozenset(r.events)) for r in rows]


def enqueue(session: Session, events: Sequence[StoredEvent], to: Sequence[Subscriber]) -> int:
    """Queue one delivery per event and subscriber that wants it (its type, its team, its
    sweep); an insert only when there is one. How many were queued."""
    deliveries = [
        {
            "endpoint_id": subscriber.id,
            "event_id": event.id,
            "event_type": str(event.type),
            "payload": event_payload(event),
        }
        for event in events
        for subscriber in to
        if subscriber.wants(event)
    ]
    if deliveries:
        session.execute(sa.insert(WebhookDelivery), deliveries)
    return len(deliveries)


def event_payload(event: StoredEvent) -> dict[str, Any]:
    """The JSON body receivers get, in the Standard Webhooks shape (type, timestamp, data)."""
    return {
        "type": str(event.type),
        "timestamp": event.created_at.isoformat(),
        "data": {
            "event_id": event.id,
            "sweep_id": str(event.sweep_id),
            "run_index": event.run_index,
            "data": dict(event.data),
        },
    }


def fail_pending(session: Session, endpoint_id: UUID, *, reason: str, now: datetime) -> int:
    """End the endpoint's pending deliveries as failed with `reason`; how many. An attempt
    in flight meanwhile finds its delivery no longer pending and records nothing."""
    result = session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == PENDING)
        .values(status=FAILED, next_attempt_at=None, last_attempt_at=now, last_error=reason)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    id: int
    endpoint_id: UUID
    attempts: int  # made before this one
    payload: dict[str, Any]


def claim_due(
    session: Session, *, now: datetime, limit: int, lease_s: float
) -> list[ClaimedDelivery]:
    """Up to `limit` due deliveries no other sender holds, oldest due first, their due time
    moved `lease_s` ahead; the caller commits at once, before posting anything."""
    due = (
        sa.select(WebhookDelivery.id)
        .where(WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = session.execute(
        sa.update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + timedelta(seconds=lease_s))
        .returning(
            WebhookDelivery.id,
            WebhookDelivery.endpoint_id,
            WebhookDelivery.attempts,
            WebhookDelivery.payload,
        )
        .execution_options(synchronize_session=False)
    ).all()
    return [ClaimedDelivery(row.id, row.endpoint_id, row.attempts, row.payload) for row in rows]


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one POST went: the answer's status and first KiB, or why there was none."""

    status_code: int | None = None
    error: str | None = None
    response: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.error is None and self.status_code is not None and 200 <= self.status_code < 300


def record_attempt(
    session: Session,
    claimed: ClaimedDelivery,
    result: AttemptResult,
    *,
    now: datetime,
    retry_in_s: float | None,
) -> bool:
    """Store an attempt's result: succeeded, pending again in `retry_in_s`, or failed for
    good when that is None. Compare-and-set on the attempt count, so an attempt whose claim
    lapsed and was taken by another sender is not counted twice; whether it applied."""
    if result.succeeded:
        status, next_at = SUCCEEDED, None
    elif retry_in_s is not None:
        status, next_at = PENDING, now + timedelta(seconds=retry_in_s)
    else:
        status, next_at = FAILED, None
    applied = session.execute(
        sa.update(WebhookDelivery)
        .where(
            WebhookDelivery.id == claimed.id,
            WebhookDelivery.status == PENDING,
            WebhookDelivery.attempts == claimed.attempts,
        )
        .values(
            status=status,
            attempts=claimed.attempts + 1,
            next_attempt_at=next_at,
            last_attempt_at=now,
            last_status_code=result.status_code,
            last_error=None if result.error is None else result.error[:1000],
            last_response=result.response,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(applied, "rowcount", 0))


def page_deliveries(
    session: Session, endpoint_id: UUID, offset: int, limit: int
) -> tuple[list[WebhookDelivery], int]:
    """An endpoint's deliveries, newest first, and how many it has."""
    mine = WebhookDelivery.endpoint_id == endpoint_id
    total = session.scalar(sa.select(sa.func.count()).select_from(WebhookDelivery).where(mine))
    query = (
        sa.select(WebhookDelivery)
        .where(mine)
        .order_by(WebhookDelivery.id.desc())
        .offset(offset)
        .limit(limit)
    )
    return list(session.scalars(query)), total or 0


def oldest_due_age_s(session: Session, now: datetime) -> float:
    """Seconds the longest-waiting due delivery has been due: the webhook delivery lag
    (0 when nothing is due). Claimed deliveries count again only if their lease lapses."""
    oldest = session.scalar(
        sa.select(sa.func.min(WebhookDelivery.next_attempt_at)).where(
            WebhookDelivery.status == PENDING, WebhookDelivery.next_attempt_at <= now
        )
    )
    return 0.0 if oldest is None else max(0.0, (now - oldest).total_seconds())


def prune_ended_before(session: Session, cutoff: datetime) -> int:
    """Delete succeeded and failed deliveries queued before `cutoff` (with the events they
    carried, say); pending ones stay until they end. How many were deleted."""
    result = session.execute(
        sa.delete(WebhookDelivery).where(
            WebhookDelivery.status != PENDING, WebhookDelivery.created_at < cutoff
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
