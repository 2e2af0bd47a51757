"""The webhook outbox on Postgres: which endpoints an event is queued for, in its own
transaction, and how senders claim and record deliveries without stepping on each other."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.engine import make_engine
from app.db.models import WebhookDelivery, WebhookEndpoint
from app.domain.events import EventType, NewEvent
from app.services import webhooks
from app.stores import events, webhook_endpoints, webhook_outbox
from app.stores.webhook_outbox import AttemptResult
from tests.conftest import scratch_database


@pytest.fixture(scope="module")
def outbox_engine() -> Iterator[Engine]:
    # Its own database: claims take every due delivery, whoever queued it.
    with scratch_database("outbox") as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def session(outbox_engine: Engine) -> Iterator[Session]:
    with Session(outbox_engine, expire_on_commit=False) as session:
        yield session
    with outbox_engine.begin() as connection:
        connection.execute(sa.delete(WebhookDelivery))
        connection.execute(sa.delete(WebhookEndpoint))


def endpoint(
    session: Session, team: UUID, *types: str, sweep: UUID | None = None, enabled: bool = True
) -> UUID:
    added = webhook_endpoints.add_endpoint(
        session,
        endpoint_id=uuid4(),
        team_id=team,
        url="https://93.184.215.14/hook",
        events=types,
        secret="whsec_" + "A" * 44,
        sweep_id=sweep,
    )
    added.enabled = enabled
    session.commit()
    return added.id


def queued(session: Session) -> set[tuple[UUID, str, str]]:
    """(endpoint, event type, sweep) of every delivery."""
    rows = session.scalars(sa.select(WebhookDelivery))
    return {(d.endpoint_id, d.event_type, d.payload["data"]["sweep_id"]) for d in rows}


def test_events_are_queued_for_the_endpoints_that_want_them(session: Session) -> None:
    team, other_team, sweep, other_sweep = uuid4(), uuid4(), uuid4(), uuid4()
    finished_only = endpoint(session, team, "sweep.finished")
    everything = endpoint(session, team, "*")
    sweeps_own = endpoint(session, team, "run.failed", sweep=sweep)
    endpoint(session, team, "*", sweep=other_sweep)  # another sweep's: none of these events
    endpoint(session, other_team, "*")
    endpoint(session, team, "*", enabled=False)

    events.record(
        session,
        NewEvent(EventType.SWEEP_FINISHED, team, sweep),
        NewEvent(EventType.RUN_FAILED, team, sweep, run_index=3, data={"message": "oom"}),
    )
    session.commit()

    s = str(sweep)
    assert queued(session) == {
        (finished_only, "sweep.finished", s),
        (everything, "sweep.finished", s),
        (everything, "run.failed", s),
        (sweeps_own, "run.failed", s),
    }
    failed = session.scalars(
        sa.select(WebhookDelivery).where(WebhookDelivery.endpoint_id == sweeps_own)
    ).one()
    stored = events.after(session, team_id=team, after_id=0, limit=10)
    assert failed.event_id == stored[1].id
    assert failed.payload == {
        "type": "run.failed",
        "timestamp": stored[1].created_at.isoformat(),
        "data": {
            "event_id": stored[1].id,
            "sweep_id": s,
            "run_index": 3,
            "data": {"message": "oom"},
        },
    }


def test_a_rolled_back_event_queues_nothing(session: Session) -> None:
    team = uuid4()
    endpoint(session, team, "*")
    events.record(session, NewEvent(EventType.SWEEP_FINISHED, team, uuid4()))
    session.rollback()
    session.commit()
    assert queued(session) == set()


def test_an_event_no_endpoint_wants_inserts_nothing(session: Session) -> None:
    team = uuid4()
    endpoint(session, team, "sweep.finished")
    events.record(session, NewEvent(EventType.RUN_PROGRESS, team, uuid4()))
    session.commit()
    assert queued(session) == set()


def queue_two(session: Session) -> None:
    team = uuid4()
    endpoint(session, team, "*")
    sweep = uuid4()
    events.record(
        session,
        NewEvent(EventType.SWEEP_STARTED, team, sweep),
        NewEvent(EventType.SWEEP_FINISHED, team, sweep),
    )
    session.commit()


def test_two_senders_never_claim_the_same_delivery(session: Session, outbox_engine: Engine) -> None:
    queue_two(session)
    now = utc_now() + timedelta(seconds=1)
    with Session(outbox_engine) as first, Session(outbox_engine) as second:
        mine = webhook_outbox.claim_due(first, now=now, limit=1, lease_s=60)
        # The first claim is not committed yet: its row is locked, and skipped.
        theirs = webhook_outbox.claim_due(second, now=now, limit=5, lease_s=60)
        first.commit()
        second.commit()
    assert len(mine) == len(theirs) == 1
    assert mine[0].id != theirs[0].id
    with Session(outbox_engine) as third:
        assert webhook_outbox.claim_due(third, now=now, limit=5, lease_s=60) == []
        # A claim whose lease lapsed (its sender died) is due again.
        later = now + timedelta(seconds=61)
        assert len(webhook_outbox.claim_due(third, now=later, limit=5, lease_s=60)) == 2


def test_an_attempt_is_recorded_once(session: Session) -> None:
    queue_two(session)
    now = utc_now() + timedelta(seconds=1)
    claimed = webhook_outbox.claim_due(session, now=now, limit=1, lease_s=60)[0]
    failed = AttemptResult(status_code=500, error="answered 500", response="busy")
    assert webhook_outbox.record_attempt(session, claimed, failed, now=now, retry_in_s=5)
    # The same claim again (a sender whose lease lapsed) does not count a second attempt.
    assert not webhook_outbox.record_attempt(session, claimed, failed, now=now, retry_in_s=5)
    session.commit()
    delivery = session.get_one(WebhookDelivery, claimed.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at == now + timedelta(seconds=5)


def test_the_lag_is_the_age_of_the_oldest_due_delivery(session: Session) -> None:
    assert webhook_outbox.oldest_due_age_s(session, utc_now()) == 0.0
    queue_two(session)
    oldest = session.scalar(sa.select(sa.func.min(WebhookDelivery.next_attempt_at)))
    assert oldest is not None
    later = oldest + timedelta(seconds=30)
    assert webhook_outbox.oldest_due_age_s(session, later) == pytest.approx(30)
    webhook_outbox.claim_due(session, now=later, limit=5, lease_s=60)
    session.commit()
    assert webhook_outbox.oldest_due_age_s(session, later) == 0.0


def test_pruning_keeps_pending_deliveries(session: Session) -> None:
    queue_two(session)
    now = utc_now() + timedelta(seconds=1)
    claimed = webhook_outbox.claim_due(session, now=now, limit=1, lease_s=60)[0]
    webhook_outbox.record_attempt(
        session, claimed, AttemptResult(status_code=204), now=now, retry_in_s=None
    )
    session.commit()
    assert webhook_outbox.prune_ended_before(session, now + timedelta(hours=1)) == 1
    session.commit()
    (left,) = session.scalars(sa.select(WebhookDelivery))
    assert (left.status, left.id != claimed.id) == ("pending", True)


def test_disabling_an_endpoint_fails_its_pending_deliveries_and_queues_nothing_more(
    session: Session,
) -> None:
    team, sweep = uuid4(), uuid4()
    hook = endpoint(session, team, "*")
    delivered = endpoint(session, team, "*")
    events.record(session, NewEvent(EventType.SWEEP_STARTED, team, sweep))
    session.commit()

    off = webhooks.EndpointChanges(enabled=False)
    assert webhooks.update_endpoint(session, team, hook, off) is not None
    rows = session.scalars(sa.select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
    by_endpoint = {row.endpoint_id: row for row in rows}
    assert by_endpoint[hook].status == "failed"
    assert by_endpoint[hook].last_error == webhooks.DISABLED
    assert by_endpoint[hook].next_attempt_at is None
    assert by_endpoint[delivered].status == "pending"  # another endpoint's stays due

    events.record(session, NewEvent(EventType.SWEEP_FINISHED, team, sweep))
    session.commit()
    assert {
        (d.endpoint_id, d.event_type)
        for d in session.scalars(
            sa.select(WebhookDelivery).where(WebhookDelivery.event_type == "sweep.finished")
        )
    } == {(delivered, "sweep.finished")}

    on = webhooks.EndpointChanges(enabled=True)
    assert webhooks.update_endpoint(session, team, hook, on) is not None
    events.record(session, NewEvent(EventType.GRID_READY, team, sweep))
    session.commit()
    ready = session.scalars(
        sa.select(WebhookDelivery.endpoint_id).where(WebhookDelivery.event_type == "grid.ready")
    ).all()
    assert set(ready) == {hook, delivered}
    assert webhooks.update_endpoint(session, uuid4(), hook, off) is None  # not that team's
