"""Each state change records its events in its own transaction, with the payload the event
table documents (`app.domain.events`); a change that does not apply, or is rolled back,
records none. Progress is sampled from the followed prompt's frames."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, cast
from uuid import uuid4

import pytest
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import Event, Sweep
from app.domain.events import EventType, NewEvent, StoredEvent
from app.domain.states import FINISHABLE, RunStatus, SweepStatus
from app.services import cancelling, pausing, retrying
from app.stores import events, progress, runs, sweeps, teams
from app.stores.runs import Claim
from workers import reconciliation
from workers.progress import ProgressTap
from workers.runtime import Runtime

INSTANCE = "http://gpu0:8188"


@pytest.fixture
def celery() -> Celery:
    return Celery("events", broker="memory://")  # the services' messages go nowhere


def new_sweep(session: Session, total: int, status: SweepStatus = SweepStatus.PENDING) -> Sweep:
    team = teams.get_or_create_team(session, f"team-{uuid4().hex[:8]}")
    sweep = sweeps.add_sweep(
        session,
        sweep_id=uuid4(),
        team_id=team.id,
        workflow="txt2img",
        request={},
        plan={},
        total=total,
        priority=7,
        status=status,
    )
    runs.add_runs(session, sweep.id, (runs.NewRun(i, {"seed": i}) for i in range(total)))
    session.commit()
    return sweep


def logged(session: Session, sweep: Sweep, after_id: int = 0) -> list[StoredEvent]:
    return events.after(
        session, team_id=sweep.team_id, after_id=after_id, limit=1000, sweep_id=sweep.id
    )


def summary(found: list[StoredEvent]) -> list[tuple[str, int | None, dict[str, Any]]]:
    return [(event.type.value, event.run_index, dict(event.data)) for event in found]


def start(session: Session, sweep: Sweep, index: int) -> Claim:
    run = runs.get_run(session, sweep.id, index)
    assert run is not None
    until = utc_now() + timedelta(minutes=1)
    claim = runs.start_run(session, run.id, INSTANCE, f"task-{uuid4()}", until)
    assert claim is not None
    session.commit()
    return claim


def test_submission_records_one_sweep_queued_and_a_paused_one_its_pause(
    db_session: Session,
) -> None:
    sweep = new_sweep(db_session, 3)
    assert summary(logged(db_session, sweep)) == [
        ("sweep.queued", None, {"runs": 3, "workflow": "txt2img", "priority": 7})
    ]
    held = new_sweep(db_session, 2, SweepStatus.PAUSED)
    assert [e.type for e in logged(db_session, held)] == [
        EventType.SWEEP_QUEUED,
        EventType.SWEEP_PAUSED,
    ]


def test_a_run_records_its_start_and_its_outcome(db_session: Session) -> None:
    sweep = new_sweep(db_session, 3)
    cursor = logged(db_session, sweep)[-1].id
    assert sweeps.move_sweep(db_session, sweep.id, [SweepStatus.PENDING], SweepStatus.RUNNING)
    first, second, third = (start(db_session, sweep, i) for i in range(3))
    assert runs.finish_run(db_session, first, RunStatus.SUCCEEDED, outputs=["a_00001_.png"])
    error = {"kind": "execution", "message": "boom", "node_id": "3", "class_type": "KSampler"}
    assert runs.finish_run(db_session, second, RunStatus.FAILED, error)
    assert runs.requeue_run(db_session, third, {"kind": "transport", "message": "gone"})
    db_session.commit()
    started = {"instance": INSTANCE, "attempt": 1}
    assert summary(logged(db_session, sweep, cursor)) == [
        ("sweep.started", None, {}),
        ("run.started", 0, {**started, "prompt_id": str(first.run_id)}),
        ("run.started", 1, {**started, "prompt_id": str(second.run_id)}),
        ("run.started", 2, {**started, "prompt_id": str(third.run_id)}),
        ("run.succeeded", 0, {"outputs": ["a_00001_.png"]}),
        ("run.failed", 1, {"node_id": "3", "node_type": "KSampler", "message": "boom"}),
        ("run.queued", 2, {"reason": "requeued"}),
    ]


def test_a_stale_report_and_a_rolled_back_change_record_nothing(db_session: Session) -> None:
    sweep = new_sweep(db_session, 2)
    claim = start(db_session, sweep, 0)
    assert runs.finish_run(db_session, claim, RunStatus.SUCCEEDED)
    db_session.commit()
    cursor = logged(db_session, sweep)[-1].id
    assert not runs.finish_run(db_session, claim, RunStatus.FAILED)  # a duplicate report
    assert not runs.requeue_run(db_session, claim, {"kind": "transport"})
    db_session.commit()
    run = runs.get_run(db_session, sweep.id, 1)
    assert run is not None
    until = utc_now() + timedelta(minutes=1)
    assert runs.start_run(db_session, run.id, INSTANCE, "task", until) is not None
    assert sweeps.move_sweep(db_session, sweep.id, [SweepStatus.PENDING], SweepStatus.PAUSED)
    db_session.rollback()
    db_session.commit()
    assert logged(db_session, sweep, cursor) == []


def test_cancelling_counts_queued_runs_and_names_running_ones_then_finishes(
    db_session: Session, celery: Celery
) -> None:
    sweep = new_sweep(db_session, 4)
    start(db_session, sweep, 2)
    cursor = logged(db_session, sweep)[-1].id
    assert cancelling.cancel_sweep(db_session, celery, sweep)
    found = logged(db_session, sweep, cursor)
    counts = {"queued": 0, "running": 0, "succeeded": 0, "failed": 0, "cancelled": 4}
    assert summary(found) == [
        ("run.cancelled", 2, {}),
        ("sweep.cancelled", None, {"runs_cancelled": 3}),
        ("sweep.finished", None, {"status": "cancelled", "counts": counts}),
    ]
    json.dumps([dict(e.data) for e in found])  # JSON-safe as stored
    assert not cancelling.cancel_sweep(db_session, celery, sweep)
    assert logged(db_session, sweep, found[-1].id) == []


def test_pausing_resuming_draining_finishing_and_a_retry_reopening(
    db_session: Session, celery: Celery
) -> None:
    sweep = new_sweep(db_session, 1)
    pending = [SweepStatus.PENDING]
    assert sweeps.move_sweep(
        db_session, sweep.id, pending, SweepStatus.RUNNING, started_at=utc_now()
    )
    db_session.refresh(sweep)
    claim = start(db_session, sweep, 0)
    assert pausing.pause_sweep(db_session, sweep)
    assert not pausing.pause_sweep(db_session, sweep)  # paused already: nothing recorded
    assert pausing.resume_sweep(db_session, celery, sweep)
    assert runs.finish_run(db_session, claim, RunStatus.FAILED, {"message": "no"})
    assert sweeps.start_finalizing_if_drained(db_session, sweep.id)
    db_session.commit()
    assert sweeps.move_sweep(db_session, sweep.id, FINISHABLE, SweepStatus.FAILED)
    db_session.commit()
    db_session.refresh(sweep)
    assert retrying.retry_runs(db_session, celery, sweep, [RunStatus.FAILED], None) == 1
    counts = {"queued": 0, "running": 0, "succeeded": 0, "failed": 1, "cancelled": 0}
    assert [(kind, index) for kind, index, _ in summary(logged(db_session, sweep))] == [
        ("sweep.queued", None),
        ("sweep.started", None),
        ("run.started", 0),
        ("sweep.paused", None),
        ("sweep.resumed", None),
        ("run.failed", 0),
        ("sweep.finalizing", None),
        ("sweep.finished", None),
        ("run.queued", 0),
        ("sweep.reopened", None),
    ]
    found = logged(db_session, sweep)
    assert found[-3].data == {"status": "failed", "counts": counts}
    assert found[-2].data == {"reason": "retry"}
    assert found[-1].data == {"runs": 1}


def test_progress_is_recorded_only_while_the_attempt_holds_the_run(db_session: Session) -> None:
    sweep = new_sweep(db_session, 1)
    claim = start(db_session, sweep, 0)
    cursor = logged(db_session, sweep)[-1].id
    args = (claim.run_id, claim.attempt, sweep.id, 0)
    assert progress.record_progress(db_session, *args, node="3", value=4, max_=20)
    db_session.commit()
    assert runs.finish_run(db_session, claim, RunStatus.SUCCEEDED, cached=["1", "2"])
    db_session.commit()
    assert not progress.record_progress(db_session, *args, node="3", value=20, max_=20)
    db_session.commit()
    assert summary(logged(db_session, sweep, cursor)) == [
        ("run.progress", 0, {"node": "3", "value": 4, "max": 20}),
        ("run.cached", 0, {"nodes": ["1", "2"]}),
        ("run.succeeded", 0, {"outputs": []}),
    ]


def test_events_are_pruned_oldest_first_in_bounded_batches(db_session: Session) -> None:
    for _ in range(3):
        new_sweep(db_session, 1)
    every = sa.select(Event.id).order_by(Event.created_at, Event.id)
    before = list(db_session.scalars(every))
    assert events.prune_older_than(db_session, utc_now() + timedelta(days=1), limit=2) == 2
    assert list(db_session.scalars(every)) == before[2:]
    assert events.prune_older_than(db_session, utc_now() - timedelta(days=3650), limit=2) == 0


# --- sampling the followed prompt's frames ---------------------------------------------------


def _frame(kind: str, prompt_id: str, **data: Any) -> str:
    return json.dumps({"type": kind, "data": {"prompt_id": prompt_id, **data}})


@pytest.fixture
def committed(engine: Engine) -> Iterator[Session]:
    """A session on the real engine, for a tap that opens sessions of its own."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


def _tap(engine: Engine, claim: Claim, interval: float) -> ProgressTap:
    rt = SimpleNamespace(
        settings=SimpleNamespace(progress_interval_s=interval),
        sessions=lambda: Session(engine),
    )
    return ProgressTap(cast(Runtime, rt), claim)


def test_progress_frames_are_sampled_and_cached_nodes_noted_once(
    engine: Engine, committed: Session
) -> None:
    # One run, started and then ended: nothing of it stays claimable in the shared database.
    sweep = new_sweep(committed, 1)
    claim = start(committed, sweep, 0)
    cursor = logged(committed, sweep)[-1].id
    prompt = str(claim.run_id)
    tap = _tap(engine, claim, interval=60.0)
    tap(_frame("execution_cached", prompt, nodes=["4", "5"]))
    tap(_frame("execution_cached", prompt, nodes=["9"]))
    for step in range(1, 21):  # sampling shorter than one interval reports nothing
        tap(_frame("progress", prompt, node="3", value=step, max=20))
    tap(_frame("progress_state", prompt, nodes={}))
    assert tap.cached_nodes == ("4", "5")
    every = _tap(engine, claim, interval=0.0)
    for value in (1, 1, 2, 2, 3):  # after the first frame, once per distinct value
        every(_frame("progress", prompt, node="3", value=value, max=20))
    assert runs.finish_run(committed, claim, RunStatus.SUCCEEDED, cached=tap.cached_nodes)
    committed.commit()
    found = summary(logged(committed, sweep, cursor))
    assert found == [
        *(("run.progress", 0, {"node": "3", "value": v, "max": 20}) for v in (1, 2, 3)),
        ("run.cached", 0, {"nodes": ["4", "5"]}),
        ("run.succeeded", 0, {"outputs": []}),
    ]


def test_the_reconciler_prunes_events_past_the_retention(engine: Engine) -> None:
    team_id, sweep_id = uuid4(), uuid4()
    with Session(engine) as session:
        events.record(
            session,
            NewEvent(EventType.SWEEP_QUEUED, team_id, sweep_id, data={"n": "old"}),
            NewEvent(EventType.SWEEP_STARTED, team_id, sweep_id, data={"n": "new"}),
        )
        session.commit()
        old, new = events.after(session, team_id=team_id, after_id=0, limit=10)
        session.execute(
            sa.update(Event).where(Event.id == old.id).values(created_at=utc_now() - timedelta(2))
        )
        session.commit()
    rt = SimpleNamespace(
        settings=SimpleNamespace(event_retention_hours=24.0), sessions=lambda: Session(engine)
    )
    reconciliation.prune_events(cast(Runtime, rt), utc_now())
    with Session(engine) as session:
        left = events.after(session, team_id=team_id, after_id=0, limit=10)
        session.execute(sa.delete(Event).where(Event.team_id == team_id))
        session.commit()
    assert [event.id for event in left] == [new.id]
