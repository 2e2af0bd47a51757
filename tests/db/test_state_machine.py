"""The sweep and run state machine, driven by Hypothesis through the real stores and services
on Postgres: random sequences of submit, start, claim, run outcomes (success, failure, a
retryable failure), pause, resume, cancel, finalize and retry (which reopens an ended
sweep), with stale and duplicate reports mixed in. After every step:

- every status change is a move `app.domain.states` allows (so a final sweep stays final
  unless a retry reopens it);
- each sweep's per-status counters equal a recount of its runs;
- `active_sweeps` has a row exactly for the sweeps with queued runs, active exactly while
  the sweep is claimable;
- the running runs are exactly the claims held, each run held once; no claim took a run of a
  sweep that was not claimable (paused or cancelled) before it;
- a claim finds a run exactly when some claimable sweep has one queued;
- a sweep that is not yet final has unfinished runs; a pending one has not started;
- the event log holds exactly one event for each status change observed (`sweep.queued` for
  a new sweep, none for a queued run cancelled with its sweep, which `sweep.cancelled`
  counts), with nothing recorded by a step that changed nothing.

`make test` runs a few examples (STATE_MACHINE_EXAMPLES, default 15); `make fuzz` many more.
The races between concurrent claimers, pauses and cancellations are played step by step in
tests/db/test_pause_claims.py and tests/db/test_fair_claims.py; here one session takes every
step, committing after each as the services and workers do.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, cast
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from celery import Celery
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import ActiveSweep, Run, Sweep
from app.domain.events import EventType
from app.domain.states import (
    CLAIMABLE,
    FINAL_SWEEP_STATUSES,
    FINISHABLE,
    STARTABLE,
    RunStatus,
    SweepStatus,
    final_sweep_status,
    run_may_move,
    sweep_may_move,
)
from app.queue import START_SWEEP
from app.services import cancelling, pausing, retrying
from app.stores import claims, events, runs, sweeps, teams
from app.stores.runs import Claim

EXAMPLES = int(os.environ.get("STATE_MACHINE_EXAMPLES", "15"))
STEPS = 30
INSTANCES = ("http://gpu0:8188", "http://gpu1:8188")
UNFINISHED = (SweepStatus.PENDING, SweepStatus.RUNNING, SweepStatus.PAUSED)
# What the log records of each run move; a queued run cancelled with its sweep records none.
RUN_MOVE_EVENTS = {
    (RunStatus.QUEUED, RunStatus.RUNNING): EventType.RUN_STARTED,
    (RunStatus.RUNNING, RunStatus.SUCCEEDED): EventType.RUN_SUCCEEDED,
    (RunStatus.RUNNING, RunStatus.FAILED): EventType.RUN_FAILED,
    (RunStatus.RUNNING, RunStatus.QUEUED): EventType.RUN_QUEUED,
    (RunStatus.FAILED, RunStatus.QUEUED): EventType.RUN_QUEUED,
    (RunStatus.CANCELLED, RunStatus.QUEUED): EventType.RUN_QUEUED,
    (RunStatus.RUNNING, RunStatus.CANCELLED): EventType.RUN_CANCELLED,
}
Logged = tuple[EventType, UUID, int | None]


def sweep_move_events(source: SweepStatus, target: SweepStatus) -> list[EventType]:
    """What the log records of a sweep move."""
    if target is SweepStatus.CANCELLED:
        return [EventType.SWEEP_CANCELLED, EventType.SWEEP_FINISHED]
    if target in FINAL_SWEEP_STATUSES:
        return [EventType.SWEEP_FINISHED]
    if target is SweepStatus.FINALIZING:
        return [EventType.SWEEP_FINALIZING]
    if target is SweepStatus.PAUSED:
        return [EventType.SWEEP_PAUSED]
    if source is SweepStatus.PAUSED:
        return [EventType.SWEEP_RESUMED]
    if source in FINAL_SWEEP_STATUSES:
        return [EventType.SWEEP_REOPENED]
    return [EventType.SWEEP_STARTED]


@dataclass
class Outbox:
    """Stands in for the Celery app: what the services sent after their commits."""

    sent: list[tuple[str, list[Any]]] = field(default_factory=list)

    def send_task(self, name: str, args: list[Any], countdown: float | None = None) -> None:
        self.sent.append((name, args))


@dataclass(frozen=True)
class Seen:
    """One sweep as the invariants last read it."""

    status: SweepStatus
    counters: dict[RunStatus, int]
    started: bool


class SweepLifecycle(RuleBasedStateMachine):
    engine: Engine

    def __init__(self) -> None:
        super().__init__()
        self.connection = self.engine.connect()
        self.transaction = self.connection.begin()
        self.session = Session(
            bind=self.connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        # Other tests' committed sweeps must not be claimable here; rolled back at teardown.
        self.session.execute(sa.delete(ActiveSweep))
        self.session.commit()
        self.team_id = teams.get_or_create_team(self.session, f"machine-{uuid4().hex[:8]}").id
        self.outbox = Outbox()
        self.started = utc_now()
        self.submitted: list[UUID] = []  # in submission order: choices go by position, as
        # ids are random and a replayed example must make the same choices
        self.seen: dict[UUID, Seen] = {}
        self.run_seen: dict[UUID, tuple[UUID, RunStatus]] = {}
        self.held: dict[UUID, Claim] = {}  # run id → the claim a worker holds on it
        self.stale: list[Claim] = []  # claims whose attempt ended, was cancelled or requeued
        self.claimed_from: dict[UUID, SweepStatus] = {}  # this step's claims: sweep's status
        self.cancels = 0
        self.logged_after = events.last_id(self.session)  # the event log read so far
        self.expected: Counter[Logged] = Counter()  # events the moves seen since owe

    def teardown(self) -> None:
        self.session.close()
        self.transaction.rollback()
        self.connection.close()

    # --- helpers ---------------------------------------------------------------------------

    def sweep_ids(self, *statuses: SweepStatus) -> list[UUID]:
        return [i for i in self.submitted if not statuses or self.seen[i].status in statuses]

    def queued_in(self, *statuses: SweepStatus) -> list[UUID]:
        """The sweeps in `statuses` with queued runs."""
        return [i for i in self.sweep_ids(*statuses) if self.seen[i].counters[RunStatus.QUEUED]]

    def held_claims(self) -> list[Claim]:
        return sorted(self.held.values(), key=lambda c: (self.submitted.index(c.sweep_id), c.index))

    def fresh_sweep(self, sweep_id: UUID) -> Sweep:
        """The sweep as a new request would load it."""
        self.session.expire_all()
        found = sweeps.find_sweep(self.session, sweep_id)
        assert found is not None
        return found

    def celery(self) -> Celery:
        return cast(Celery, self.outbox)

    def end_attempt(self, held: Claim) -> None:
        del self.held[held.run_id]
        self.stale.append(held)

    # --- rules -----------------------------------------------------------------------------

    @initialize(counts=st.lists(st.integers(1, 3), min_size=2, max_size=2))
    def two_running_sweeps(self, counts: list[int]) -> None:
        for count in counts:
            self.submit(count, paused=False)
            self.start_message_to(self.submitted[-1])

    # At most two unfinished sweeps at a time, so most steps move the ones there are.
    @precondition(lambda self: len(self.sweep_ids(*UNFINISHED)) < 2)
    @rule(count=st.integers(1, 3), paused=st.booleans())
    def submit(self, count: int, paused: bool) -> None:
        sweep = sweeps.add_sweep(
            self.session,
            sweep_id=uuid4(),
            team_id=self.team_id,
            workflow="w",
            request={},
            plan={},
            total=count,
            status=SweepStatus.PAUSED if paused else SweepStatus.PENDING,
        )
        # Every sweep of the example is made in one database transaction, whose now() they
        # would share: distinct submission times keep the claims' order deterministic.
        created = self.started + timedelta(seconds=len(self.submitted))
        self.session.execute(
            sa.update(Sweep).where(Sweep.id == sweep.id).values(created_at=created)
        )
        self.submitted.append(sweep.id)
        runs.add_runs(
            self.session, sweep.id, (runs.NewRun(i, {"seed": i}, i) for i in range(count))
        )
        self.session.commit()

    @precondition(lambda self: self.sweep_ids(SweepStatus.PENDING))
    @rule(data=st.data())
    def start_message(self, data: st.DataObject) -> None:
        """The worker's start: pending → running."""
        self.start_message_to(data.draw(st.sampled_from(self.sweep_ids(SweepStatus.PENDING))))

    def start_message_to(self, sweep_id: UUID) -> None:
        moved = sweeps.move_sweep(
            self.session, sweep_id, STARTABLE, SweepStatus.RUNNING, started_at=utc_now()
        )
        assert moved
        self.session.commit()

    @precondition(lambda self: self.queued_in(*UNFINISHED))
    @rule(instance=st.sampled_from(INSTANCES))
    def claim(self, instance: str) -> None:
        """What the dispatcher does for a free slot: choose a run, then start it."""
        starting = claims.Starting(f"task-{uuid4()}", utc_now() + timedelta(1))
        held = claims.next_run(self.session, instance, None, None, starting)
        if held is None:
            self.session.commit()
            waiting = self.queued_in(*CLAIMABLE)
            assert not waiting, f"claimable sweeps {waiting} have queued runs, none was claimed"
            return
        self.session.commit()
        assert held.run_id not in self.held, "a run was claimed twice"
        self.held[held.run_id] = held
        self.claimed_from[held.run_id] = self.seen[held.sweep_id].status

    @precondition(lambda self: self.held)
    @rule(data=st.data(), outcome=st.sampled_from(["succeeded", "failed", "retry"]))
    def report(self, data: st.DataObject, outcome: str) -> None:
        """A worker records its run's outcome, draining the sweep in the same transaction."""
        held = data.draw(st.sampled_from(self.held_claims()))
        if outcome == "retry":
            assert runs.requeue_run(self.session, held, {"kind": "transport"})
        else:
            assert runs.finish_run(self.session, held, RunStatus(outcome))
            sweeps.start_finalizing_if_drained(self.session, held.sweep_id)
        self.session.commit()
        self.end_attempt(held)

    @precondition(lambda self: self.stale or self.held)
    @rule(data=st.data())
    def stale_or_duplicate(self, data: st.DataObject) -> None:
        """A redelivered message: an ended attempt's report, or a second start of a held run,
        changes nothing."""
        if self.stale and (not self.held or data.draw(st.booleans())):
            old = data.draw(st.sampled_from(self.stale))
            assert not runs.finish_run(self.session, old, RunStatus.SUCCEEDED)
            assert not runs.requeue_run(self.session, old, {"kind": "transport"})
        else:
            held = data.draw(st.sampled_from(self.held_claims()))
            until = utc_now() + timedelta(1)
            assert runs.start_run(self.session, held.run_id, held.instance, "dup", until) is None
        self.session.commit()

    @precondition(lambda self: self.sweep_ids(*UNFINISHED))
    @rule(data=st.data())
    def pause(self, data: st.DataObject) -> None:
        """Pausing a paused sweep leaves it as it is."""
        sweep_id = data.draw(st.sampled_from(self.sweep_ids(*UNFINISHED)))
        before = self.seen[sweep_id].status
        paused = pausing.pause_sweep(self.session, self.fresh_sweep(sweep_id))
        assert paused == (before is not SweepStatus.PAUSED)

    @precondition(lambda self: self.sweep_ids(*UNFINISHED))
    @rule(data=st.data())
    def resume(self, data: st.DataObject) -> None:
        """Resuming a sweep that is not paused leaves it as it is."""
        sweep_id = data.draw(st.sampled_from(self.sweep_ids(*UNFINISHED)))
        before = self.seen[sweep_id].status
        sent = len(self.outbox.sent)
        resumed = pausing.resume_sweep(self.session, self.celery(), self.fresh_sweep(sweep_id))
        assert resumed == (before is SweepStatus.PAUSED)
        # A resumed sweep wakes the workers as a start does; an unchanged one sends nothing.
        expected = [(START_SWEEP, [str(sweep_id)])] if resumed else []
        assert self.outbox.sent[sent:] == expected

    @precondition(lambda self: self.sweep_ids(SweepStatus.FINALIZING, *FINAL_SWEEP_STATUSES))
    @rule(data=st.data())
    def touch_an_ended_sweep(self, data: st.DataObject) -> None:
        """Pause, resume and cancel of a sweep whose runs have all ended: refused or no-ops."""
        ended = self.sweep_ids(SweepStatus.FINALIZING, *FINAL_SWEEP_STATUSES)
        sweep_id = data.draw(st.sampled_from(ended))
        before = self.seen[sweep_id].status
        with pytest.raises(pausing.WrongStatus) as refused:
            pausing.pause_sweep(self.session, self.fresh_sweep(sweep_id))
        assert refused.value.status is before
        if before is SweepStatus.FINALIZING:
            assert not pausing.resume_sweep(self.session, self.celery(), self.fresh_sweep(sweep_id))
        else:
            with pytest.raises(pausing.WrongStatus):
                pausing.resume_sweep(self.session, self.celery(), self.fresh_sweep(sweep_id))
        assert not cancelling.cancel_sweep(self.session, self.celery(), self.fresh_sweep(sweep_id))

    # Rarely: a cancellation ends a sweep's story, and every step after it on that sweep
    # only checks that nothing moves.
    @precondition(lambda self: self.sweep_ids(*UNFINISHED) and self.cancels < 2)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        sweep_id = data.draw(st.sampled_from(self.sweep_ids(*UNFINISHED)))
        assert cancelling.cancel_sweep(self.session, self.celery(), self.fresh_sweep(sweep_id))
        self.cancels += 1
        # Its workers' claims are void: their reports must change nothing.
        for held in [c for c in self.held.values() if c.sweep_id == sweep_id]:
            self.end_attempt(held)

    @precondition(lambda self: self.retryable())
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        """POST .../retry: the sweep's failed and cancelled runs are queued again; an ended
        sweep is reopened to running, an open one (paused too) keeps its status."""
        sweep_id = data.draw(st.sampled_from(self.retryable()))
        before = self.seen[sweep_id]
        wanted = [RunStatus.FAILED, RunStatus.CANCELLED]
        sweep = self.fresh_sweep(sweep_id)
        queued = retrying.retry_runs(self.session, self.celery(), sweep, wanted, None)
        assert queued == sum(before.counters[status] for status in wanted)

    def retryable(self) -> list[UUID]:
        """Sweeps with failed or cancelled runs that a retry may queue (not finalizing)."""
        return [
            i
            for i in self.sweep_ids(*UNFINISHED, *FINAL_SWEEP_STATUSES)
            if self.seen[i].counters[RunStatus.FAILED] + self.seen[i].counters[RunStatus.CANCELLED]
        ]

    @precondition(lambda self: self.sweep_ids(SweepStatus.FINALIZING))
    @rule(data=st.data())
    def finalize(self, data: st.DataObject) -> None:
        sweep_id = data.draw(st.sampled_from(self.sweep_ids(SweepStatus.FINALIZING)))
        status = final_sweep_status(self.seen[sweep_id].counters)
        assert sweeps.move_sweep(self.session, sweep_id, FINISHABLE, status, finished_at=utc_now())
        self.session.commit()

    # --- invariants ------------------------------------------------------------------------

    @invariant()
    def every_move_is_allowed_and_the_records_agree(self) -> None:
        now = self.read_sweeps()
        for sweep_id, seen in now.items():
            before = self.seen.get(sweep_id)
            if before is None:
                self.expected[(EventType.SWEEP_QUEUED, sweep_id, None)] += 1
            was = SweepStatus.PENDING if before is None else before.status
            if was is not seen.status:
                assert before is None or sweep_may_move(was, seen.status), (was, seen.status)
                for kind in sweep_move_events(was, seen.status):
                    self.expected[(kind, sweep_id, None)] += 1
            self.check_sweep(sweep_id, seen)
        self.check_runs()
        self.check_events(now)
        self.seen = now

    def check_events(self, now: dict[UUID, Seen]) -> None:
        """The log's new events are exactly those the moves seen owe; a sweep's
        `sweep.finished` names its final status."""
        new = events.after(
            self.session, team_id=self.team_id, after_id=self.logged_after, limit=10_000
        )
        logged = Counter((event.type, event.sweep_id, event.run_index) for event in new)
        assert logged == self.expected, (logged - self.expected, self.expected - logged)
        for event in new:
            if event.type is EventType.SWEEP_FINISHED:
                assert event.data["status"] == now[event.sweep_id].status.value
        if new:
            self.logged_after = new[-1].id
        self.expected = Counter()

    def read_sweeps(self) -> dict[UUID, Seen]:
        query = sa.select(Sweep).where(Sweep.team_id == self.team_id)
        # populate_existing: the counters move by UPDATEs the identity map never sees.
        found = self.session.scalars(query.execution_options(populate_existing=True))
        return {
            sweep.id: Seen(sweep.status, sweeps.run_counts(sweep), sweep.started_at is not None)
            for sweep in found
        }

    def check_sweep(self, sweep_id: UUID, seen: Seen) -> None:
        assert seen.counters == runs.count_runs_by_status(self.session, sweep_id)
        query = sa.select(ActiveSweep.active).where(ActiveSweep.sweep_id == sweep_id)
        active = self.session.execute(query).scalars().all()
        if seen.counters[RunStatus.QUEUED] > 0:
            assert active == [seen.status in CLAIMABLE], (seen, active)
        else:
            assert active == [], (seen, active)
        unfinished = seen.counters[RunStatus.QUEUED] + seen.counters[RunStatus.RUNNING]
        if seen.status in UNFINISHED:
            assert unfinished > 0, f"{seen.status} sweep with nothing left to run"
        if seen.status is SweepStatus.FINALIZING:
            assert unfinished == 0
        if seen.status is SweepStatus.PENDING:
            assert not seen.started
        if seen.status is SweepStatus.RUNNING:
            assert seen.started

    def check_runs(self) -> None:
        query = sa.select(Run.id, Run.sweep_id, Run.index, Run.status, Run.attempts).where(
            Run.sweep_id.in_(self.submitted or [uuid4()])
        )
        running = set()
        for run_id, sweep_id, index, status, attempts in self.session.execute(query):
            before = self.run_seen.get(run_id)
            was = RunStatus.QUEUED if before is None else before[1]
            if was is not status:
                assert run_may_move(was, status), (was, status)
                kind = RUN_MOVE_EVENTS.get((was, status))
                if kind is not None:
                    self.expected[(kind, sweep_id, index)] += 1
            if status is RunStatus.RUNNING:
                running.add(run_id)
                assert self.held[run_id].attempt == attempts
            self.run_seen[run_id] = (sweep_id, status)
        assert running == set(self.held), "the running runs are not the claims held"
        for run_id, sweep_status in self.claimed_from.items():
            assert sweep_status in CLAIMABLE, f"run {run_id} of a {sweep_status} sweep was claimed"
        self.claimed_from = {}


@pytest.fixture
def machine(engine: Engine) -> type[SweepLifecycle]:
    SweepLifecycle.engine = engine
    return SweepLifecycle


@pytest.mark.timeout(max(120, EXAMPLES * 4))
def test_the_sweep_state_machine_keeps_its_invariants(machine: type[SweepLifecycle]) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
