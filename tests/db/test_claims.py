"""Claiming runs for instance slots from many processes at once, on a real Postgres.

Every `work` message is one hint to fill one slot; a claimer that gives up because another
holds the instance's lock loses that hint, and the slot stays empty until the reconciler.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from uuid import uuid4

import pytest
import sqlalchemy as sa
from celery import Celery
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import ActiveSweep, Run
from app.domain.states import RunStatus
from app.queue import make_celery
from app.services.cancelling import cancel_sweep
from app.settings import Settings
from app.stores import instances, runs, sweeps
from app.stores.runs import Claim
from tests.conftest import REDIS_URL, scratch_database
from tests.support.run_counts import assert_counts_match_recount
from tests.support.sweeps import running_sweep
from workers.dispatching import take_work
from workers.runtime import Runtime, build_runtime

INSTANCES = [f"http://gpu{n}:8188" for n in range(4)]
SLOTS = 2


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with scratch_database("claims") as url:
        settings = Settings(
            database_url=url,
            comfy_instances=",".join(INSTANCES),
            instance_slots=SLOTS,
            redis_url=REDIS_URL,
        )
        rt = build_runtime(settings, make_celery(settings))
        with rt.sessions() as session:
            instances.sync_instances(session, [(u, []) for u in INSTANCES])
            session.commit()
        yield rt
        rt.sessions.kw["bind"].dispose()


def claim_together(rt: Runtime, claimers: int) -> list[Claim | None]:
    barrier = threading.Barrier(claimers)

    def claim(n: int) -> Claim | None:
        barrier.wait()
        work = take_work(rt, f"task-{uuid4()}-{n}")
        assert work is None or not work.resumed
        return None if work is None else work.claim

    with ThreadPoolExecutor(claimers) as pool:
        return list(pool.map(claim, range(claimers)))


def free_all_slots(rt: Runtime) -> None:
    with rt.sessions() as session:
        session.execute(sa.update(Run).values(status=RunStatus.CANCELLED))
        session.commit()


def counting_locks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The instances claims lock from now on, in order: the first chosen with its lock
    (`lock_emptiest`), others one by one (`lock_healthy`)."""
    locked: list[str] = []
    lock_one, lock_emptiest = instances.lock_healthy, instances.lock_emptiest

    def counted(session: Session, url: str, now: datetime) -> instances.LockedInstance | None:
        locked.append(url)
        return lock_one(session, url, now)

    def counted_emptiest(session: Session, now: datetime, slots: int) -> instances.Chosen | None:
        emptiest = lock_emptiest(session, now, slots)
        if emptiest is not None:
            locked.append(emptiest.url)
        return emptiest

    monkeypatch.setattr(instances, "lock_healthy", counted)
    monkeypatch.setattr(instances, "lock_emptiest", counted_emptiest)
    return locked


def test_a_claim_with_nothing_waiting_locks_one_instance_not_the_whole_pool(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As a sweep's last run is claimed, each of its slots' tasks claims once more and finds
    nothing: the first instance it locks shows that no sweep waits for its tags, so the
    others (the same tags) are not locked one by one to find the same."""
    free_all_slots(runtime)
    with runtime.sessions() as session:
        session.execute(sa.delete(ActiveSweep))  # no run is queued: nothing waits
        session.commit()
    locked = counting_locks(monkeypatch)
    assert take_work(runtime, f"task-{uuid4()}") is None
    assert len(locked) == 1


def test_the_first_instance_tried_is_the_emptiest_with_a_free_slot(runtime: Runtime) -> None:
    free_all_slots(runtime)
    sweep_id = running_sweep(runtime, 8, model_key="m")
    full, one, other_one, empty = INSTANCES

    def emptiest() -> str | None:
        with runtime.sessions() as session:
            chosen = instances.lock_emptiest(session, utc_now(), SLOTS)
        return None if chosen is None else chosen.url

    def start_on(*urls: str) -> None:
        with runtime.sessions() as session:
            queued = sa.select(Run.id).where(
                Run.sweep_id == sweep_id, Run.status == RunStatus.QUEUED
            )
            for url, run_id in zip(urls, session.scalars(queued.limit(len(urls))), strict=True):
                assert runs.start_run(session, run_id, url, f"task-{uuid4()}", utc_now())
            session.commit()

    start_on(full, full, one, other_one)
    assert emptiest() == empty
    start_on(empty)
    assert {emptiest() for _ in range(20)} <= {one, other_one, empty}  # all hold one
    start_on(one, other_one, empty)
    assert emptiest() is None  # every slot is taken


def test_a_task_refills_the_slot_its_last_run_freed_before_an_emptier_instance(
    runtime: Runtime,
) -> None:
    """So its prompts keep sharing its socket to that instance; once that instance is full,
    or may take no runs, the claim goes to the emptiest, as any other."""
    free_all_slots(runtime)
    running_sweep(runtime, 8, model_key="m")
    freed, *emptier = INSTANCES

    def claim_after(instance: str) -> str:
        work = take_work(runtime, f"task-{uuid4()}", maybe_held=False, freed=instance)
        assert work is not None
        return work.claim.instance

    assert claim_after(freed) == freed  # all four as empty: the freed one
    assert claim_after(freed) == freed  # one prompt there, none on the others
    assert claim_after(freed) in emptier  # full (SLOTS = 2)
    with runtime.sessions() as session:
        assert instances.set_drained(session, emptier[0], True)
        session.commit()
    try:
        assert claim_after(emptier[0]) != emptier[0]  # drained: no new runs there
    finally:
        with runtime.sessions() as session:
            instances.set_drained(session, emptier[0], False)
            session.commit()


@pytest.mark.parametrize("round_", range(5))
def test_as_many_claimers_as_slots_arriving_together_fill_every_slot(
    runtime: Runtime, round_: int
) -> None:
    free_all_slots(runtime)
    sweep_id = running_sweep(runtime, 40, model_key="m")

    claims = claim_together(runtime, len(INSTANCES) * SLOTS)

    assert all(c is not None for c in claims), "a claimer gave up while slots were free"
    with runtime.sessions() as session:
        assert assert_counts_match_recount(session, sweep_id)[RunStatus.RUNNING] == len(claims)
    got = [c for c in claims if c is not None]
    assert len({c.run_id for c in got}) == len(got)
    assert Counter(c.instance for c in got) == dict.fromkeys(INSTANCES, SLOTS)


def test_a_claimer_beyond_the_pools_slots_gets_nothing(runtime: Runtime) -> None:
    free_all_slots(runtime)
    running_sweep(runtime, 40, model_key="m")

    claims = claim_together(runtime, len(INSTANCES) * SLOTS + 3)

    got = [c for c in claims if c is not None]
    assert len(got) == len(INSTANCES) * SLOTS
    assert Counter(c.instance for c in got) == dict.fromkeys(INSTANCES, SLOTS)


def test_a_message_that_already_holds_a_run_gets_that_run_back(runtime: Runtime) -> None:
    """Its worker died mid-run and the broker delivered the message again."""
    free_all_slots(runtime)
    running_sweep(runtime, 5, model_key="m")
    first = take_work(runtime, "task-redelivered")
    assert first is not None

    again = take_work(runtime, "task-redelivered")

    assert again is not None
    assert again.resumed
    assert again.claim.run_id == first.claim.run_id
    assert again.claim.attempt == first.claim.attempt  # resumed, not a new attempt


def test_a_first_delivery_is_not_looked_up_as_holding_a_run(runtime: Runtime) -> None:
    """The broker flags a message it delivers again; one it does not holds nothing yet."""
    free_all_slots(runtime)
    running_sweep(runtime, 5, model_key="m")
    first = take_work(runtime, "task-once")
    assert first is not None

    other = take_work(runtime, "task-once", maybe_held=False)

    assert other is not None
    assert not other.resumed
    assert other.claim.run_id != first.claim.run_id


def fail_and_requeue(rt: Runtime, claim: Claim) -> None:
    with rt.sessions() as session:
        error = {"kind": "timeout", "message": "prompt made no progress", "details": "stalled"}
        assert runs.requeue_run(session, claim, error)
        session.commit()


def test_a_retry_goes_to_another_instance_than_the_one_it_failed_on(runtime: Runtime) -> None:
    free_all_slots(runtime)
    running_sweep(runtime, 1, model_key="m")
    work = take_work(runtime, f"task-{uuid4()}")
    assert work is not None
    # Every instance is empty again each time, so only the failure can steer the claim.
    for _ in range(8):
        failed = work.claim
        fail_and_requeue(runtime, failed)
        work = take_work(runtime, f"task-{uuid4()}")
        assert work is not None
        assert work.claim.run_id == failed.run_id
        assert work.claim.instance != failed.instance
        with runtime.sessions() as session:
            run = session.get(Run, failed.run_id)
            assert run is not None
            assert run.error is not None
            assert run.error["instance"] == failed.instance


def test_a_retry_returns_to_the_instance_it_failed_on_when_no_other_is_healthy(
    runtime: Runtime,
) -> None:
    free_all_slots(runtime)
    running_sweep(runtime, 1, model_key="m")
    only, others = INSTANCES[0], INSTANCES[1:]
    with runtime.sessions() as session:
        for url in others:
            instances.set_health(session, url, False, utc_now(), "down")
        session.commit()
    try:
        work = take_work(runtime, f"task-{uuid4()}")
        assert work is not None
        assert work.claim.instance == only
        fail_and_requeue(runtime, work.claim)
        again = take_work(runtime, f"task-{uuid4()}")
    finally:
        with runtime.sessions() as session:
            for url in others:
                instances.set_health(session, url, True, utc_now())
            session.commit()
    assert again is not None
    assert (again.claim.run_id, again.claim.instance) == (work.claim.run_id, only)


def test_a_run_handed_back_is_taken_over_at_once_by_another_task(runtime: Runtime) -> None:
    """A worker shutting down releases its run, the prompt still running: no lease to wait."""
    free_all_slots(runtime)
    running_sweep(runtime, 1, model_key="m")
    work = take_work(runtime, "task-leaving")
    assert work is not None
    claim = work.claim
    with runtime.sessions() as session:
        assert not runs.hand_back(session, claim, "task-someone-else", utc_now())
        taken_early = runs.take_over(session, claim.run_id, "task-next", utc_now(), utc_now())
        assert taken_early is None  # the lease still holds until its owner hands it back
        assert runs.hand_back(session, claim, "task-leaving", utc_now())
        session.commit()

    with runtime.sessions() as session:
        now = utc_now()
        taken = runs.take_over(session, claim.run_id, "task-next", now, now + timedelta(seconds=60))
        renewed = runs.renew_lease(session, claim, "task-leaving", now)
        session.commit()

    assert taken is not None
    assert (taken.run_id, taken.attempt, taken.instance) == (claim.run_id, 1, claim.instance)
    assert not renewed  # the leaving task holds nothing any more


def test_workers_finishing_runs_while_the_sweep_is_cancelled_neither_deadlock_nor_drift(
    runtime: Runtime,
) -> None:
    """Workers lock a run, then the sweep row; a cancellation must lock in that order too."""
    free_all_slots(runtime)
    sweep_id = running_sweep(runtime, 80, model_key="m")
    finished = threading.Event()

    def work(n: int) -> int:
        done = 0
        while not finished.is_set():
            took = take_work(runtime, f"task-{uuid4()}-{n}")
            if took is None:
                return done
            with runtime.sessions() as session:
                error = {"kind": "transport", "message": "gone"}
                if n % 2:
                    runs.requeue_run(session, took.claim, error)
                else:
                    done += runs.finish_run(session, took.claim, RunStatus.SUCCEEDED)
                session.commit()
        return done

    def cancel() -> None:
        with runtime.sessions() as session:
            sweep = sweeps.find_sweep(session, sweep_id)
            assert sweep is not None
            cancel_sweep(session, Celery("claims", broker="memory://"), sweep)
        finished.set()

    with ThreadPoolExecutor(len(INSTANCES) * SLOTS + 1) as pool:
        workers = [pool.submit(work, n) for n in range(len(INSTANCES) * SLOTS)]
        time.sleep(0.3)
        pool.submit(cancel).result()
        assert sum(w.result() for w in workers) >= 0  # re-raises a deadlock, if any

    with runtime.sessions() as session:
        counts = assert_counts_match_recount(session, sweep_id)
    assert counts[RunStatus.QUEUED] == counts[RunStatus.RUNNING] == 0
    assert counts[RunStatus.CANCELLED] > 0
