"""A paused sweep's queued runs are never claimed, even by a claim racing with the pause; its
running runs end as usual; it stays paused while it has queued runs and finalizes once it has
none; the reconciler neither wakes it nor leaves a drained one unfinished."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import ActiveSweep, Instance, Run, Sweep
from app.domain.states import PAUSABLE, RESUMABLE, RunStatus, SweepStatus
from app.queue import FINALIZE_SWEEP, WORK, make_celery
from app.settings import Settings
from app.stores import instances, runs, sweeps
from app.stores.runs import Claim
from tests.conftest import REDIS_URL, scratch_database
from tests.support.sweeps import running_sweep
from workers import reconciliation
from workers.dispatching import take_work
from workers.runtime import Runtime, build_runtime

INSTANCES = [f"http://gpu{n}:8188" for n in range(2)]


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with scratch_database("pause") as url:
        settings = Settings(
            database_url=url,
            comfy_instances=",".join(INSTANCES),
            instance_slots=2,
            redis_url=REDIS_URL,
        )
        rt = build_runtime(settings, make_celery(settings))
        yield rt
        rt.sessions.kw["bind"].dispose()


@pytest.fixture(autouse=True)
def empty_farm(runtime: Runtime) -> None:
    with runtime.sessions() as session:
        session.execute(sa.delete(ActiveSweep))
        session.execute(sa.update(Run).values(status=RunStatus.CANCELLED))
        # Earlier tests' sweeps ended too, so a reconciler pass sees only this test's.
        session.execute(sa.update(Sweep).values(status=SweepStatus.CANCELLED))
        session.execute(sa.delete(Instance))
        instances.sync_instances(session, [(u, []) for u in INSTANCES])
        session.commit()


def claim(rt: Runtime) -> Claim | None:
    work = take_work(rt, f"task-{uuid4()}")
    return None if work is None else work.claim


def pause(session: Session, sweep_id: UUID) -> None:
    assert sweeps.move_sweep(session, sweep_id, PAUSABLE, SweepStatus.PAUSED)


def status_of(rt: Runtime, sweep_id: UUID) -> SweepStatus:
    with rt.sessions() as session:
        found = sweeps.find_sweep(session, sweep_id)
        assert found is not None
        return found.status


def lock_waiters(rt: Runtime) -> int:
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with rt.sessions() as session:
        return session.scalar(query) or 0


def wait_until_blocked(rt: Runtime, task: object) -> None:
    deadline = time.monotonic() + 10
    while lock_waiters(rt) == 0:
        assert time.monotonic() < deadline, f"{task} neither waited nor finished"
        time.sleep(0.01)


def test_a_paused_sweep_is_not_claimed_and_a_resumed_one_is(runtime: Runtime) -> None:
    sweep_id = running_sweep(runtime, 2, workflow="w")
    with runtime.sessions() as session:
        pause(session, sweep_id)
        session.commit()
    assert claim(runtime) is None
    with runtime.sessions() as session:
        assert sweeps.move_sweep(session, sweep_id, RESUMABLE, SweepStatus.RUNNING)
        session.commit()
    held = claim(runtime)
    assert held is not None
    assert held.sweep_id == sweep_id


def test_a_claim_that_read_the_sweep_before_the_pause_committed_leaves_its_run_queued(
    runtime: Runtime,
) -> None:
    """The order that would start a run of a paused sweep: the claim reads `active_sweeps`
    while the pause is uncommitted, then chooses a run. It must wait for the sweep's row,
    and then see the pause."""
    sweep_id = running_sweep(runtime, 3, workflow="w")
    with ThreadPoolExecutor(1) as pool, runtime.sessions() as pausing:
        pause(pausing, sweep_id)  # holds the sweep's row until it commits
        claimer = pool.submit(claim, runtime)
        wait_until_blocked(runtime, "the claim")
        pausing.commit()
        assert claimer.result(10) is None
    with runtime.sessions() as session:
        assert runs.count_runs_by_status(session, sweep_id)[RunStatus.QUEUED] == 3
    assert status_of(runtime, sweep_id) is SweepStatus.PAUSED


def test_a_pause_waits_for_a_claim_in_progress_whose_run_then_runs_on(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other order: a claim holds the sweep's row when the pause comes. The pause takes
    effect after the claim commits; the run it started is one of those already running."""
    sweep_id = running_sweep(runtime, 3, workflow="w")
    started, go = threading.Event(), threading.Event()
    start = runs.start_run

    def start_then_hold(*args: object, **kwargs: object) -> Claim | None:
        held = start(*args, **kwargs)  # type: ignore[arg-type]
        started.set()
        assert go.wait(10)
        return held

    monkeypatch.setattr(runs, "start_run", start_then_hold)

    def pause_now() -> None:
        with runtime.sessions() as session:
            pause(session, sweep_id)
            session.commit()

    with ThreadPoolExecutor(2) as pool:
        claimer = pool.submit(claim, runtime)
        assert started.wait(10)
        pauser = pool.submit(pause_now)
        wait_until_blocked(runtime, "the pause")
        go.set()
        held = claimer.result(10)
        pauser.result(10)
    monkeypatch.undo()
    assert held is not None
    assert status_of(runtime, sweep_id) is SweepStatus.PAUSED
    assert claim(runtime) is None
    with runtime.sessions() as session:
        counts = runs.count_runs_by_status(session, sweep_id)
    assert (counts[RunStatus.RUNNING], counts[RunStatus.QUEUED]) == (1, 2)


def test_other_sweeps_are_claimed_while_one_is_paused(runtime: Runtime) -> None:
    paused, other = running_sweep(runtime, 2, workflow="w"), running_sweep(runtime, 2, workflow="w")
    with runtime.sessions() as session:
        pause(session, paused)
        session.commit()
    taken = [claim(runtime), claim(runtime), claim(runtime)]
    assert {c.sweep_id for c in taken if c is not None} == {other}
    assert taken[2] is None


def finish(rt: Runtime, held: Claim) -> bool:
    """Records a success as a worker does; whether the sweep started finalizing."""
    with rt.sessions() as session:
        assert runs.finish_run(session, held, RunStatus.SUCCEEDED)
        drained = sweeps.start_finalizing_if_drained(session, held.sweep_id)
        session.commit()
        return drained


def test_a_paused_sweep_with_queued_runs_stays_paused_when_its_running_runs_end(
    runtime: Runtime,
) -> None:
    sweep_id = running_sweep(runtime, 3, workflow="w")
    held = [claim(runtime), claim(runtime)]
    with runtime.sessions() as session:
        pause(session, sweep_id)
        session.commit()
    assert not any(finish(runtime, c) for c in held if c is not None)
    assert status_of(runtime, sweep_id) is SweepStatus.PAUSED


def test_a_paused_sweep_with_nothing_queued_finalizes_when_its_last_run_ends(
    runtime: Runtime,
) -> None:
    sweep_id = running_sweep(runtime, 2, workflow="w")
    first, second = claim(runtime), claim(runtime)
    assert first is not None
    assert second is not None
    with runtime.sessions() as session:
        pause(session, sweep_id)
        session.commit()
    assert not finish(runtime, first)
    assert finish(runtime, second)
    assert status_of(runtime, sweep_id) is SweepStatus.FINALIZING


def sent_by_reconciler(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, sweep_id: UUID
) -> list[tuple[str, tuple[object, ...]]]:
    """What a pass of stall handling sends, a long stall time after the sweep's last move."""
    sent: list[tuple[str, tuple[object, ...]]] = []
    monkeypatch.setattr(
        Runtime, "send", lambda _rt, name, *args, countdown=0: sent.append((name, args))
    )
    with rt.sessions() as session:
        session.execute(
            sa.update(Run).where(Run.sweep_id == sweep_id).values(started_at=None, finished_at=None)
        )
        session.commit()
    now = utc_now()
    reconciliation._restart_stalled(rt, now, quiet_since=now)
    return sent


def test_the_reconciler_sends_no_work_for_a_paused_sweep(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_id = running_sweep(runtime, 2, workflow="w")
    with runtime.sessions() as session:
        pause(session, sweep_id)
        session.commit()
    assert sent_by_reconciler(runtime, monkeypatch, sweep_id) == []
    assert status_of(runtime, sweep_id) is SweepStatus.PAUSED


def test_the_reconciler_finalizes_a_drained_paused_sweep(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pause that lands after the last run's record (nothing queued, nothing running)."""
    sweep_id = running_sweep(runtime, 1, workflow="w")
    held = claim(runtime)
    assert held is not None
    with runtime.sessions() as session:
        assert runs.finish_run(session, held, RunStatus.SUCCEEDED)  # its finalize step lost
        pause(session, sweep_id)
        session.commit()
    sent = sent_by_reconciler(runtime, monkeypatch, sweep_id)
    assert (FINALIZE_SWEEP, (str(sweep_id),)) in sent
    assert WORK not in {name for name, _ in sent}
    assert status_of(runtime, sweep_id) is SweepStatus.FINALIZING
