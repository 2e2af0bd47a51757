"""A `work` task keeps its instance slot (`workers.slot_keeping`): it claims, executes and
records run after run under its own task id, on a real Postgres, and ends when nothing is
left, when its worker stops, or when its time is up, handing the slot on in exactly one
message in the last two cases. ComfyUI is left out: each run's follow ends at once with its
outcome, which the task records for real (`workers.refilling`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import cast
from uuid import UUID

import pytest
import sqlalchemy as sa
from celery import Celery

from app.db.base import utc_now
from app.db.models import Run
from app.domain.states import RunStatus
from app.queue import FINALIZE_SWEEP, WORK
from app.settings import Settings
from app.stores import instances
from app.stores.runs import Claim
from tests.conftest import REDIS_URL, scratch_database
from tests.support.outbox import Outbox
from tests.support.run_counts import assert_counts_match_recount
from tests.support.sweeps import running_sweep
from workers import execution, slot_keeping, stopping
from workers.execution import Finished, Outcome, Succeeded
from workers.runtime import Runtime, build_runtime

INSTANCE = "http://gpu0:8188"


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with scratch_database("slots") as url:
        yield url


@pytest.fixture
def outbox() -> Outbox:
    return Outbox()


@pytest.fixture
def runtime(database_url: str, outbox: Outbox) -> Iterator[Runtime]:
    """One instance of one slot, nothing running: a slot's task is the only claimer."""
    settings = Settings(
        database_url=database_url,
        comfy_instances=INSTANCE,
        instance_slots=1,
        redis_url=REDIS_URL,
    )
    rt = build_runtime(settings, cast(Celery, outbox))
    with rt.sessions() as session:
        instances.sync_instances(session, [(INSTANCE, [])])
        session.execute(sa.update(Run).values(status=RunStatus.CANCELLED))
        session.commit()
    yield rt
    rt.sessions.kw["bind"].dispose()


@pytest.fixture(autouse=True)
def fresh_stop_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stopping, "notice", stopping.StopNotice())


@dataclass
class Executed:
    """What an execution saw: the run, whether it was resumed, and the runs its task held
    as it began (its own run, and no other)."""

    claim: Claim
    resumed: bool
    held: list[UUID]


Step = Callable[[Runtime, Claim], Outcome]


def succeed(rt: Runtime, claim: Claim) -> Outcome:
    return Succeeded([])


@dataclass
class Executions:
    """Stands in for `execution.follow`: each run succeeds, or ends as the next of the steps
    a test queued in `then` says."""

    seen: list[Executed] = field(default_factory=list)
    then: list[Step] = field(default_factory=list)

    def follow(self, rt: Runtime, claim: Claim, task_id: str, *, resumed: bool = False) -> Finished:
        with rt.sessions() as session:
            holding = sa.select(Run.id).where(
                Run.claimed_by == task_id, Run.status == RunStatus.RUNNING
            )
            held = list(session.scalars(holding))
        self.seen.append(Executed(claim, resumed, held))
        step = self.then.pop(0) if self.then else succeed
        return Finished(claim, step(rt, claim))


@pytest.fixture
def executions(monkeypatch: pytest.MonkeyPatch) -> Executions:
    fake = Executions()
    monkeypatch.setattr(execution, "follow", fake.follow)
    return fake


def counts(rt: Runtime, sweep_id: UUID) -> dict[RunStatus, int]:
    with rt.sessions() as session:
        return dict(assert_counts_match_recount(session, sweep_id))


def test_one_task_executes_every_run_back_to_back_holding_one_at_a_time(
    runtime: Runtime, outbox: Outbox, executions: Executions
) -> None:
    sweep_id = running_sweep(runtime, 5, model_key="m")

    slot_keeping.fill_slot(runtime, "task-a", maybe_held=False)

    assert [e.claim.index for e in executions.seen] == [0, 1, 2, 3, 4]
    assert all(e.held == [e.claim.run_id] for e in executions.seen)
    assert not any(e.resumed for e in executions.seen)
    assert counts(runtime, sweep_id)[RunStatus.SUCCEEDED] == 5
    # No message a run: only the sweep's finalize, as its last run ended.
    assert outbox.sent == [FINALIZE_SWEEP]


def test_a_task_finding_the_slot_taken_ends_at_once(
    runtime: Runtime, outbox: Outbox, executions: Executions
) -> None:
    """A message beyond the pool's slots (a second sweep's start sends one per slot)."""
    sweep_id = running_sweep(runtime, 3, model_key="m")

    def a_second_message(rt: Runtime, claim: Claim) -> Outcome:
        slot_keeping.fill_slot(rt, "task-b", maybe_held=False)
        return Succeeded([])

    executions.then += [a_second_message]
    slot_keeping.fill_slot(runtime, "task-a", maybe_held=False)

    assert [e.claim.index for e in executions.seen] == [0, 1, 2]  # all task-a's
    assert counts(runtime, sweep_id)[RunStatus.SUCCEEDED] == 3
    assert outbox.sent == [FINALIZE_SWEEP]


def test_a_stopping_worker_claims_no_more_and_hands_the_slot_on_in_one_message(
    runtime: Runtime, outbox: Outbox, executions: Executions
) -> None:
    sweep_id = running_sweep(runtime, 5, model_key="m")

    def stop_then_record(rt: Runtime, claim: Claim) -> Outcome:
        stopping.notice.request()  # as the worker's SIGTERM does, mid-run
        return Succeeded([])

    executions.then += [succeed, stop_then_record]
    slot_keeping.fill_slot(runtime, "task-a", maybe_held=False)

    assert [e.claim.index for e in executions.seen] == [0, 1]
    assert counts(runtime, sweep_id)[RunStatus.QUEUED] == 3
    assert outbox.sent == [WORK]


def test_after_its_time_the_task_ends_and_hands_the_slot_on_in_one_message(
    runtime: Runtime, outbox: Outbox, executions: Executions, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = running_sweep(runtime, 6, model_key="m")
    clock = [1000.0]
    monkeypatch.setattr(slot_keeping, "monotonic", lambda: clock[0])
    step = slot_keeping.KEEP_SLOT_S * 0.4

    def slow(rt: Runtime, claim: Claim) -> Outcome:
        clock[0] += step
        return Succeeded([])

    executions.then += [slow, slow, slow, slow]
    slot_keeping.fill_slot(runtime, "task-a", maybe_held=False)

    # Claimed at 0, 0.4 and 0.8 of the time; after the third it is up.
    assert [e.claim.index for e in executions.seen] == [0, 1, 2]
    assert counts(runtime, sweep_id)[RunStatus.QUEUED] == 3
    assert outbox.sent == [WORK]


class Killed(Exception):
    """The worker process died here (SIGKILL): nothing after it ran."""


def killed(rt: Runtime, claim: Claim) -> Outcome:
    raise Killed


def test_a_message_delivered_again_after_a_kill_resumes_its_held_run_then_goes_on(
    runtime: Runtime, outbox: Outbox, executions: Executions
) -> None:
    sweep_id = running_sweep(runtime, 4, model_key="m")
    executions.then += [succeed, killed]
    with pytest.raises(Killed):
        slot_keeping.fill_slot(runtime, "task-a", maybe_held=False)
    lost = executions.seen[-1].claim
    assert counts(runtime, sweep_id)[RunStatus.RUNNING] == 1

    # The broker delivers the same message (same task id) again, flagged as redelivered.
    slot_keeping.fill_slot(runtime, "task-a", maybe_held=True)

    again = executions.seen[2]
    assert (again.claim.run_id, again.claim.attempt, again.resumed) == (lost.run_id, 1, True)
    assert [e.claim.index for e in executions.seen] == [0, 1, 1, 2, 3]
    assert not any(e.resumed for e in executions.seen[3:])
    assert counts(runtime, sweep_id)[RunStatus.SUCCEEDED] == 4
    assert outbox.sent == [FINALIZE_SWEEP]


def lapse(rt: Runtime, run_id: UUID) -> None:
    """The run's worker died and its lease ran out."""
    with rt.sessions() as session:
        past = utc_now() - timedelta(seconds=1)
        session.execute(sa.update(Run).where(Run.id == run_id).values(lease_expires_at=past))
        session.commit()


def test_a_resumed_run_is_seen_through_and_its_slot_kept(
    runtime: Runtime, outbox: Outbox, executions: Executions
) -> None:
    sweep_id = running_sweep(runtime, 4, model_key="m")
    executions.then += [killed]
    with pytest.raises(Killed):
        slot_keeping.fill_slot(runtime, "task-dead", maybe_held=False)
    lost = executions.seen[-1].claim
    lapse(runtime, lost.run_id)

    slot_keeping.resume_then_fill(runtime, lost.run_id, "task-resume", maybe_held=False)

    assert [(e.claim.index, e.resumed) for e in executions.seen[1:]] == [
        (0, True),
        (1, False),
        (2, False),
        (3, False),
    ]
    assert counts(runtime, sweep_id)[RunStatus.SUCCEEDED] == 4


def test_a_resume_message_for_a_run_already_done_does_nothing(
    runtime: Runtime, outbox: Outbox, executions: Executions
) -> None:
    """The reconciler's resume arriving after the run was recorded claims no other run."""
    sweep_id = running_sweep(runtime, 3, model_key="m")
    executions.then += [succeed, killed]
    with pytest.raises(Killed):
        slot_keeping.fill_slot(runtime, "task-a", maybe_held=False)
    done = executions.seen[0].claim
    executions.seen.clear()

    slot_keeping.resume_then_fill(runtime, done.run_id, "task-resume", maybe_held=False)

    assert executions.seen == []
    assert counts(runtime, sweep_id)[RunStatus.QUEUED] == 1


def test_a_resume_message_delivered_again_resumes_the_later_run_its_task_held(
    runtime: Runtime, outbox: Outbox, executions: Executions
) -> None:
    """Killed while keeping the slot of a run it had resumed: the message comes back."""
    sweep_id = running_sweep(runtime, 3, model_key="m")
    executions.then += [killed]
    with pytest.raises(Killed):
        slot_keeping.fill_slot(runtime, "task-dead", maybe_held=False)
    first = executions.seen[0].claim
    lapse(runtime, first.run_id)
    executions.then += [succeed, killed]
    with pytest.raises(Killed):
        slot_keeping.resume_then_fill(runtime, first.run_id, "task-resume", maybe_held=False)
    later = executions.seen[-1].claim
    assert later.run_id != first.run_id

    slot_keeping.resume_then_fill(runtime, first.run_id, "task-resume", maybe_held=True)

    assert (executions.seen[3].claim.run_id, executions.seen[3].resumed) == (later.run_id, True)
    assert counts(runtime, sweep_id)[RunStatus.SUCCEEDED] == 3
