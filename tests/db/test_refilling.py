"""Recording a success and handing its slot to the sweep's next run in one transaction
(`workers.refilling`), on a real Postgres: handed over when a claim would choose the same,
with no team lock; otherwise recorded alone and claimed as usual, with the usual choice;
and under many slots at once, with a cancellation among them, no deadlock, no drift and
never more prompts on an instance than its slots."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import cast
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from celery import Celery

from app.db.base import utc_now
from app.db.models import ActiveSweep, Instance, Run, Sweep, Team
from app.domain.states import RunStatus, SweepStatus
from app.services.cancelling import cancel_sweep
from app.settings import Settings
from app.stores import instances, runs, sweeps
from app.stores.runs import Claim
from tests.conftest import REDIS_URL, scratch_database
from tests.support.outbox import Outbox
from tests.support.run_counts import assert_counts_match_recount
from tests.support.sweeps import running_sweep
from workers.dispatching import Work, take_work
from workers.execution import Finished, Succeeded
from workers.refilling import record_then_take
from workers.runtime import Runtime, build_runtime

INSTANCES = ["http://gpu0:8188", "http://gpu1:8188"]
SLOTS = 3


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with scratch_database("refilling") as url:
        settings = Settings(
            database_url=url,
            comfy_instances=",".join(INSTANCES),
            instance_slots=SLOTS,
            redis_url=REDIS_URL,
        )
        rt = build_runtime(settings, cast(Celery, Outbox()))
        with rt.sessions() as session:
            instances.sync_instances(session, [(url, []) for url in INSTANCES])
            session.commit()
        yield rt
        rt.sessions.kw["bind"].dispose()


@pytest.fixture(autouse=True)
def nothing_waiting(runtime: Runtime) -> None:
    """Earlier tests' sweeps neither run nor wait, and every instance serves afresh."""
    with runtime.sessions() as session:
        session.execute(
            sa.update(Run)
            .where(Run.status.in_([RunStatus.QUEUED, RunStatus.RUNNING]))
            .values(status=RunStatus.CANCELLED)
        )
        session.execute(sa.delete(ActiveSweep))
        session.execute(sa.update(Instance).values(drained=False, model_key=None))
        session.commit()


class Commits:
    """Counts the transactions committed on the runtime's engine while it listens."""

    def __init__(self, rt: Runtime) -> None:
        self.engine = rt.sessions.kw["bind"]
        self.count = 0

    def _counted(self, _connection: object) -> None:
        self.count += 1

    def __enter__(self) -> Commits:
        sa.event.listen(self.engine, "commit", self._counted)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(self.engine, "commit", self._counted)


def status_of(rt: Runtime, run_id: UUID) -> RunStatus | None:
    with rt.sessions() as session:
        return runs.run_status(session, run_id)


def succeeded(claim: Claim) -> Finished:
    return Finished(claim, Succeeded([]))


def start(rt: Runtime, sweep_id: UUID, index: int, instance: str) -> Claim:
    """Start one given run on `instance`, routed to its model, whatever a claim would do."""
    with rt.sessions() as session:
        run_id = session.scalar(
            sa.select(Run.id).where(Run.sweep_id == sweep_id, Run.index == index)
        )
        assert run_id is not None
        lease = utc_now() + timedelta(seconds=60)
        claim = runs.start_run(session, run_id, instance, f"task-{uuid4()}", lease)
        assert claim is not None
        instances.set_model_key(session, instance, claim.model_key)
        session.commit()
    return claim


def team_of(rt: Runtime, sweep_id: UUID) -> UUID:
    with rt.sessions() as session:
        team_id = session.scalar(sa.select(Sweep.team_id).where(Sweep.id == sweep_id))
    assert team_id is not None
    return team_id


def test_a_success_hands_its_slot_to_the_sweeps_next_run_in_one_transaction(
    runtime: Runtime,
) -> None:
    sweep_id = running_sweep(runtime, 3, model_key="m")
    first = take_work(runtime, "task-a")
    assert first is not None

    with Commits(runtime) as commits:
        following = record_then_take(runtime, "task-a", succeeded(first.claim))

    assert following is not None
    assert commits.count == 1
    assert (following.claim.sweep_id, following.claim.index) == (sweep_id, 1)
    assert following.claim.instance == first.claim.instance
    assert status_of(runtime, first.claim.run_id) is RunStatus.SUCCEEDED
    assert status_of(runtime, following.claim.run_id) is RunStatus.RUNNING
    with runtime.sessions() as session:
        counts = assert_counts_match_recount(session, sweep_id)
    assert (counts[RunStatus.SUCCEEDED], counts[RunStatus.RUNNING]) == (1, 1)


def test_a_handover_takes_no_team_lock(runtime: Runtime) -> None:
    """Another claimer of the team holds its row: the slot is handed over regardless."""
    sweep_id = running_sweep(runtime, 3, model_key="m")
    ran = start(runtime, sweep_id, 0, INSTANCES[0])
    locked, release = threading.Event(), threading.Event()

    def hold_team() -> None:
        with runtime.sessions() as session:
            team = sa.select(Team.id).where(Team.id == team_of(runtime, sweep_id))
            # As claimers hold it (`claims._team_lock`): FOR NO KEY UPDATE.
            assert session.execute(team.with_for_update(key_share=True)).first() is not None
            locked.set()
            release.wait(10)
            session.rollback()

    with ThreadPoolExecutor(2) as pool:
        holder = pool.submit(hold_team)
        assert locked.wait(5)
        try:
            # Done while the team's row is still held: a handover waiting for it would not be.
            step = pool.submit(record_then_take, runtime, "task-a", succeeded(ran))
            following = step.result(timeout=5)
        finally:
            release.set()
            holder.result(timeout=10)

    assert following is not None
    assert (following.claim.sweep_id, following.claim.instance) == (sweep_id, ran.instance)


def test_the_slot_goes_where_fair_share_says_not_to_the_sweep_just_recorded(
    runtime: Runtime,
) -> None:
    """Two teams with nothing else running tie, and the older sweep is served first: the
    slot of a run of the newer one goes to the older, claimed after the record commits."""
    older = running_sweep(runtime, 4, model_key="m")
    newer = running_sweep(runtime, 4, model_key="m")
    ran = start(runtime, newer, 0, INSTANCES[0])

    with Commits(runtime) as commits:
        following = record_then_take(runtime, "task-a", succeeded(ran))

    assert following is not None
    assert following.claim.sweep_id == older
    assert commits.count == 2
    assert status_of(runtime, ran.run_id) is RunStatus.SUCCEEDED


def test_a_sweep_whose_next_runs_need_another_model_is_claimed_as_usual(
    runtime: Runtime,
) -> None:
    """The instance's model has no run left in the sweep: which model to load next is a
    claim's choice, under its team's lock."""
    sweep_id = running_sweep(runtime, 3, model_key="m")
    with runtime.sessions() as session:
        session.execute(
            sa.update(Run).where(Run.sweep_id == sweep_id, Run.index > 0).values(model_key="m2")
        )
        session.commit()
    ran = start(runtime, sweep_id, 0, INSTANCES[0])

    with Commits(runtime) as commits:
        following = record_then_take(runtime, "task-a", succeeded(ran))

    assert following is not None
    assert commits.count == 2
    assert following.claim.model_key == "m2"


def test_the_last_run_of_a_sweep_is_recorded_then_the_slot_claimed_elsewhere(
    runtime: Runtime,
) -> None:
    ending = running_sweep(runtime, 1, model_key="m")
    waiting = running_sweep(runtime, 2, model_key="m")
    last = start(runtime, ending, 0, INSTANCES[0])

    following = record_then_take(runtime, "task-a", succeeded(last))

    assert following is not None
    assert following.claim.sweep_id == waiting
    with runtime.sessions() as session:
        assert sweeps.sweep_status(session, ending) is SweepStatus.FINALIZING


def test_a_drained_instance_gets_no_handover(runtime: Runtime) -> None:
    sweep_id = running_sweep(runtime, 3, model_key="m")
    ran = start(runtime, sweep_id, 0, INSTANCES[0])
    with runtime.sessions() as session:
        session.execute(
            sa.update(Instance).where(Instance.url == INSTANCES[0]).values(drained=True)
        )
        session.commit()

    following = record_then_take(runtime, "task-a", succeeded(ran))

    assert status_of(runtime, ran.run_id) is RunStatus.SUCCEEDED
    assert following is not None
    assert following.claim.instance == INSTANCES[1]


def test_a_team_at_its_cap_keeps_it_through_handovers(runtime: Runtime) -> None:
    sweep_id = running_sweep(runtime, 4, model_key="m")
    with runtime.sessions() as session:
        team = sa.update(Team).where(Team.id == team_of(runtime, sweep_id))
        session.execute(team.values(max_running=1))
        session.commit()
    work = take_work(runtime, "task-a")
    assert work is not None
    assert take_work(runtime, "task-b") is None  # at its cap

    taken = 1
    while (work := record_then_take(runtime, "task-a", succeeded(work.claim))) is not None:
        taken += 1
        with runtime.sessions() as session:
            assert assert_counts_match_recount(session, sweep_id)[RunStatus.RUNNING] == 1
    assert taken == 4


def test_a_duplicate_report_hands_over_no_slot(runtime: Runtime) -> None:
    """The run was recorded already, and its slot refilled since: a second report of it
    (a redelivered task's) must not start a run there beyond the instance's slots."""
    sweep_id = running_sweep(runtime, 10, model_key="m")
    ran = start(runtime, sweep_id, 0, INSTANCES[0])
    assert record_then_take(runtime, "task-a", succeeded(ran)) is not None
    while take_work(runtime, f"task-{uuid4()}") is not None:
        pass  # every slot of the pool filled

    assert record_then_take(runtime, "task-a", succeeded(ran)) is None

    with runtime.sessions() as session:
        on_first = sa.select(sa.func.count()).where(
            Run.status == RunStatus.RUNNING, Run.instance == INSTANCES[0]
        )
        assert session.scalar(on_first) == SLOTS
        assert_counts_match_recount(session, sweep_id)


def test_slots_handing_over_at_once_with_a_cancellation_neither_deadlock_nor_drift(
    runtime: Runtime,
) -> None:
    """Every slot of the pool records and refills at once, over four teams' sweeps of two
    models (handovers and claims both), while one of the sweeps is cancelled."""
    sweep_ids = [running_sweep(runtime, 30, model_key=f"m{n % 2}") for n in range(4)]
    over_full: list[tuple[str | None, int]] = []
    running_on = sa.select(Run.instance, sa.func.count()).where(Run.status == RunStatus.RUNNING)

    def keep_slot(n: int) -> int:
        task_id = f"task-{uuid4()}-{n}"
        done = 0
        work: Work | None = take_work(runtime, task_id)
        while work is not None:
            done += 1
            work = record_then_take(runtime, task_id, succeeded(work.claim))
            with runtime.sessions() as session:
                held = session.execute(running_on.group_by(Run.instance)).all()
            over_full.extend((url, count) for url, count in held if count > SLOTS)
        return done

    def cancel() -> None:
        time.sleep(0.05)
        with runtime.sessions() as session:
            sweep = sweeps.find_sweep(session, sweep_ids[1])
            assert sweep is not None
            cancel_sweep(session, Celery("refilling", broker="memory://"), sweep)

    slots = len(INSTANCES) * SLOTS
    with ThreadPoolExecutor(slots + 1) as pool:
        cancelling = pool.submit(cancel)
        done = sum(pool.map(keep_slot, range(slots)))  # re-raises a deadlock, if any
        cancelling.result()

    assert over_full == []
    with runtime.sessions() as session:
        total = 0
        for sweep_id in sweep_ids:
            counts = assert_counts_match_recount(session, sweep_id)
            assert counts[RunStatus.QUEUED] == counts[RunStatus.RUNNING] == 0
            total += counts[RunStatus.SUCCEEDED]
        ran = Run.sweep_id.in_(sweep_ids), Run.status == RunStatus.SUCCEEDED
        assert set(session.scalars(sa.select(Run.attempts).where(*ran))) == {1}
    # Runs the cancellation caught running were taken but end cancelled: one a slot at most.
    assert total <= done <= total + slots
    assert total >= 90  # all of three sweeps, and what the cancelled one ran before
