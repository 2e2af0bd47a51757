"""The event log's store on Postgres: events are written at commit, in the transaction of the
change, and their ids grow in commit order, so a reader resuming after an id misses none."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Event
from app.domain.events import EventType, NewEvent
from app.stores import events


@pytest.fixture
def team(engine: Engine) -> Iterator[UUID]:
    team_id = uuid4()
    yield team_id
    with engine.begin() as connection:
        connection.execute(sa.delete(Event).where(Event.team_id == team_id))


def _event(team: UUID, type_: EventType = EventType.SWEEP_STARTED, **data: object) -> NewEvent:
    return NewEvent(type=type_, team_id=team, sweep_id=uuid4(), data=data)


def test_events_are_written_at_commit_and_dropped_on_rollback(engine: Engine, team: UUID) -> None:
    with Session(engine) as session:
        events.record(session, _event(team, n=1), _event(team, n=2))
        assert events.after(session, team_id=team, after_id=0, limit=10) == []
        session.commit()
        events.record(session, _event(team, n=3))
        session.rollback()
        session.commit()  # nothing pending any more

    with Session(engine) as session:
        stored = events.after(session, team_id=team, after_id=0, limit=10)
    assert [event.data["n"] for event in stored] == [1, 2]
    assert stored[0].id < stored[1].id
    assert stored[0].type is EventType.SWEEP_STARTED


def test_an_id_taken_earlier_never_appears_behind_a_reader(engine: Engine, team: UUID) -> None:
    # The first transaction writes its event and then stalls before COMMIT reaches the
    # server; the second commits meanwhile. With ids from a plain sequence a reader would see
    # the second event, move its cursor past it, and never see the first.
    stalled = threading.Event()

    def stall(connection: Connection) -> None:
        stalled.set()
        time.sleep(0.5)

    committed_at: dict[str, float] = {}

    def first() -> None:
        with Session(engine) as session:
            sa_event.listen(session.connection(), "commit", stall)
            events.record(session, _event(team, order="first"))
            session.commit()
            committed_at["first"] = time.monotonic()

    def second() -> None:
        with Session(engine) as session:
            events.record(session, _event(team, order="second"))
            session.commit()
            committed_at["second"] = time.monotonic()

    first_thread = threading.Thread(target=first)
    first_thread.start()
    assert stalled.wait(5)
    second_thread = threading.Thread(target=second)
    second_thread.start()

    seen: list[str] = []
    cursor = 0
    deadline = time.monotonic() + 10
    while len(seen) < 2 and time.monotonic() < deadline:
        with Session(engine) as session:
            for stored in events.after(session, team_id=team, after_id=cursor, limit=10):
                seen.append(str(stored.data["order"]))
                cursor = stored.id
        time.sleep(0.02)
    first_thread.join()
    second_thread.join()

    assert seen == ["first", "second"]
    assert committed_at["second"] > committed_at["first"]


def test_events_older_than_the_cutoff_are_pruned(engine: Engine, team: UUID) -> None:
    with Session(engine) as session:
        events.record(session, _event(team, age="old"), _event(team, age="new"))
        session.commit()
        old_id = events.after(session, team_id=team, after_id=0, limit=1)[0].id
        session.execute(
            sa.update(Event)
            .where(Event.id == old_id)
            .values(created_at=utc_now() - timedelta(days=8))
        )
        session.commit()
        assert events.prune_older_than(session, utc_now() - timedelta(days=7)) >= 1
        session.commit()
        left = events.after(session, team_id=team, after_id=0, limit=10)
    assert [event.data["age"] for event in left] == ["new"]


def test_a_sweeps_events_are_read_alone(engine: Engine, team: UUID) -> None:
    mine, other = _event(team, who="mine"), _event(team, who="other")
    with Session(engine) as session:
        events.record(session, mine, other)
        session.commit()
        stored = events.after(session, team_id=team, sweep_id=mine.sweep_id, after_id=0, limit=10)
    assert [event.data["who"] for event in stored] == ["mine"]
