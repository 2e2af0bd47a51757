"""A success's record (`runs.record_succeeded`): the run, its counters, its outputs and the
end of its instance's transport failure streak, on Postgres in one statement, on SQLite in
one each; and on Postgres the instance row still locked before the run's and the sweep's."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from app.db.base import utc_now
from app.db.models import Instance, Output, Run, Sweep
from app.domain.states import RunStatus
from app.queue import make_celery
from app.settings import Settings
from app.stores import instances, runs
from app.stores.outputs import NewOutput
from app.stores.runs import Claim
from tests.conftest import REDIS_URL
from tests.support.databases import BACKENDS, runtime_on
from tests.support.run_counts import assert_counts_match_recount
from tests.support.sweeps import running_sweep
from workers import execution
from workers.dispatching import take_work
from workers.runtime import Runtime, build_runtime

GPU = "http://gpu:8188"
FILES = [
    NewOutput(0, "image", "x/a_00001_.png", "image/png", 10, "a" * 64),
    NewOutput(1, "image", "x/b_00001_.png", "image/png", 20, "b" * 64),
]


@pytest.fixture(params=BACKENDS)
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    with runtime_on(request.param, tmp_path, "success", _runtime) as rt:
        yield rt


def _runtime(url: str) -> Runtime:
    settings = Settings(database_url=url, comfy_instances=GPU, redis_url=REDIS_URL)
    rt = build_runtime(settings, make_celery(settings))
    with rt.sessions() as session:
        instances.sync_instances(session, [(GPU, [])])
        session.commit()
    return rt


def claimed(rt: Runtime) -> Claim:
    work = take_work(rt, f"task-{uuid4()}")
    assert work is not None
    return work.claim


def set_streak(rt: Runtime, streak: int) -> None:
    with rt.sessions() as session:
        session.execute(sa.update(Instance).values(failure_streak=streak))
        session.commit()


def streak(rt: Runtime) -> int:
    with rt.sessions() as session:
        return session.scalar(sa.select(Instance.failure_streak).where(Instance.url == GPU)) or 0


def stored_outputs(rt: Runtime, claim: Claim) -> list[tuple[int, str, int]]:
    with rt.sessions() as session:
        query = sa.select(Output.position, Output.path, Output.size).where(
            Output.run_id == claim.run_id
        )
        return sorted(tuple(row) for row in session.execute(query))  # type: ignore[misc]


def test_a_success_records_the_run_its_outputs_and_ends_the_streak(runtime: Runtime) -> None:
    sweep_id = running_sweep(runtime, 3)
    claim = claimed(runtime)
    set_streak(runtime, 2)
    execution.record(runtime, claim, execution.Succeeded(FILES))
    assert streak(runtime) == 0
    assert stored_outputs(runtime, claim) == [(0, "x/a_00001_.png", 10), (1, "x/b_00001_.png", 20)]
    with runtime.sessions() as session:
        assert runs.run_status(session, claim.run_id) is RunStatus.SUCCEEDED
        counts = assert_counts_match_recount(session, sweep_id)
    assert counts[RunStatus.SUCCEEDED] == 1
    assert counts[RunStatus.RUNNING] == 0


def test_a_duplicate_report_adds_nothing_but_still_ends_the_streak(runtime: Runtime) -> None:
    sweep_id = running_sweep(runtime, 3)
    claim = claimed(runtime)
    with runtime.sessions() as session:
        assert runs.record_succeeded(session, claim, FILES[:1])
        session.commit()
    set_streak(runtime, 1)
    with runtime.sessions() as session:
        assert not runs.record_succeeded(session, claim, FILES)
        session.commit()
    # A success there it was, whichever report says so.
    assert streak(runtime) == 0
    assert stored_outputs(runtime, claim) == [(0, "x/a_00001_.png", 10)]
    with runtime.sessions() as session:
        counts = assert_counts_match_recount(session, sweep_id)
    assert counts[RunStatus.SUCCEEDED] == 1


def test_a_success_without_outputs_records_none(runtime: Runtime) -> None:
    running_sweep(runtime, 1)
    claim = claimed(runtime)
    with runtime.sessions() as session:
        assert runs.record_succeeded(session, claim)
        session.commit()
    assert stored_outputs(runtime, claim) == []


def test_the_instance_row_is_locked_before_the_sweep_row(runtime: Runtime) -> None:
    """A claimer holds the instance row and then locks the sweep's: a recorder ending the
    instance's streak must wait for the instance first, holding neither the run's row nor
    the sweep's meanwhile, or the two deadlock."""
    if runtime.sessions.kw["bind"].dialect.name != "postgresql":
        pytest.skip("SQLite serializes writers: there are no row locks to order")
    sweep_id = running_sweep(runtime, 3)
    claim = claimed(runtime)
    set_streak(runtime, 1)
    recorded: list[bool] = []

    def record() -> None:
        with runtime.sessions() as session:
            recorded.append(runs.record_succeeded(session, claim, FILES))
            session.commit()

    with runtime.sessions() as claimer:
        assert instances.lock_healthy(claimer, GPU, utc_now()) is not None
        recorder = threading.Thread(target=record)
        recorder.start()
        _wait_until_waiting_for_a_lock(runtime)
        # Were the sweep row the recorder's already, this would wait for it: a deadlock.
        claimer.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        # The sweep's row as a claim starting a run locks it (`runs.start_run`).
        lock_sweep = sa.select(Sweep.id).where(Sweep.id == sweep_id).with_for_update(key_share=True)
        assert claimer.scalar(lock_sweep) is not None
        claimer.execute(sa.select(Run.id).where(Run.id == claim.run_id).with_for_update())
        claimer.commit()
    recorder.join(timeout=10)
    assert recorded == [True]
    assert streak(runtime) == 0


def _wait_until_waiting_for_a_lock(rt: Runtime) -> None:
    waiting = sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND wait_event_type = 'Lock'"
    )
    with rt.sessions() as session:
        for _ in range(200):
            if session.scalar(waiting):
                return
            session.rollback()
            threading.Event().wait(0.02)
    raise AssertionError("the recorder never waited for the instance row")
