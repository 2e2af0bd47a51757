"""Who gets a free slot: priority first, then teams by running runs per weight, then a team's
sweeps in submission order; a team's running cap holds under concurrent claimers; and each
instance keeps to one checkpoint while the work allows (the real claim path, `take_work`)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.models import ActiveSweep, Instance, Run
from app.domain.states import RunStatus, SweepStatus
from app.queue import make_celery
from app.settings import Settings
from app.stores import claims, instances, runs, sweeps, teams
from app.stores.runs import FAILED_ON, Claim
from tests.conftest import REDIS_URL, scratch_database
from tests.support.claim_order import trying_first
from workers.dispatching import take_work
from workers.runtime import Runtime, build_runtime

INSTANCES = [f"http://gpu{n}:8188" for n in range(4)]
STARTING = claims.Starting("task-x", utc_now() + timedelta(minutes=5))
SLOTS = 2


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    with scratch_database("fair") as url:
        settings = Settings(
            database_url=url,
            comfy_instances=",".join(INSTANCES),
            instance_slots=SLOTS,
            redis_url=REDIS_URL,
        )
        rt = build_runtime(settings, make_celery(settings))
        yield rt
        rt.sessions.kw["bind"].dispose()


@pytest.fixture(autouse=True)
def empty_farm(runtime: Runtime) -> None:
    """No queued or running work, every instance healthy with nothing loaded."""
    with runtime.sessions() as session:
        session.execute(sa.delete(ActiveSweep))
        session.execute(sa.update(Run).values(status=RunStatus.CANCELLED))
        session.execute(sa.delete(Instance))
        instances.sync_instances(session, [(u, []) for u in INSTANCES])
        session.commit()


def make_team(rt: Runtime, weight: int = 1, max_running: int | None = None) -> UUID:
    with rt.sessions() as session:
        team = teams.get_or_create_team(session, f"team-{uuid4().hex[:8]}")
        team.weight, team.max_running = weight, max_running
        session.commit()
        return team.id


def start_sweep(
    rt: Runtime, team_id: UUID, count: int, priority: int = 50, models: int = 1
) -> UUID:
    """A running sweep of `count` queued runs, models m0.. in blocks in dispatch order."""
    with rt.sessions() as session:
        sweep = sweeps.add_sweep(
            session,
            sweep_id=uuid4(),
            team_id=team_id,
            workflow="w",
            request={},
            plan={},
            total=count,
            priority=priority,
        )
        new_runs = (runs.NewRun(i, {"seed": i}, i, f"m{i * models // count}") for i in range(count))
        runs.add_runs(session, sweep.id, new_runs)
        sweeps.move_sweep(session, sweep.id, [SweepStatus.PENDING], SweepStatus.RUNNING)
        session.commit()
        return sweep.id


def claim(rt: Runtime) -> Claim | None:
    work = take_work(rt, f"task-{uuid4()}")
    return None if work is None else work.claim


def claim_together(rt: Runtime, claimers: int) -> list[Claim]:
    barrier = threading.Barrier(claimers)

    def one(_: int) -> Claim | None:
        barrier.wait()
        return claim(rt)

    with ThreadPoolExecutor(claimers) as pool:
        return [c for c in pool.map(one, range(claimers)) if c is not None]


def finish(rt: Runtime, held: Claim) -> None:
    with rt.sessions() as session:
        assert runs.finish_run(session, held, RunStatus.SUCCEEDED)
        session.commit()


def team_of(rt: Runtime, sweep_id: UUID) -> UUID:
    with rt.sessions() as session:
        found = sweeps.find_sweep(session, sweep_id)
        assert found is not None
        return found.team_id


def test_a_high_priority_sweep_submitted_later_gets_the_next_free_slot(runtime: Runtime) -> None:
    big = start_sweep(runtime, make_team(runtime), 500)
    first = claim(runtime)
    assert first is not None
    assert first.sweep_id == big
    urgent = start_sweep(runtime, make_team(runtime), 2, priority=90)
    assert [c.sweep_id if c else None for c in (claim(runtime), claim(runtime))] == [urgent] * 2
    after = claim(runtime)
    assert after is not None
    assert after.sweep_id == big


def test_teams_of_weights_1_and_3_hold_slots_1_to_3(runtime: Runtime) -> None:
    light, heavy = make_team(runtime, weight=1), make_team(runtime, weight=3)
    start_sweep(runtime, light, 100)  # older: it would own the pool first-come-first-served
    start_sweep(runtime, heavy, 100)
    held = [claim(runtime) for _ in range(len(INSTANCES) * SLOTS)]
    by_team = Counter(team_of(runtime, c.sweep_id) for c in held if c is not None)
    assert by_team == {light: 2, heavy: 6}


def test_equal_teams_alternate_starting_with_the_one_waiting_longest(runtime: Runtime) -> None:
    older, newer = make_team(runtime), make_team(runtime)
    start_sweep(runtime, older, 10)
    start_sweep(runtime, newer, 10)
    held = [claim(runtime) for _ in range(4)]
    assert [team_of(runtime, c.sweep_id) for c in held if c] == [older, newer, older, newer]


def test_a_teams_sweeps_go_in_submission_order(runtime: Runtime) -> None:
    team = make_team(runtime)
    first = start_sweep(runtime, team, 3)
    second = start_sweep(runtime, team, 3)
    held = [claim(runtime) for _ in range(4)]
    assert [c.sweep_id for c in held if c] == [first, first, first, second]


def test_a_team_at_its_running_cap_gets_no_more_even_from_claimers_arriving_together(
    runtime: Runtime,
) -> None:
    capped, other = make_team(runtime, max_running=3), make_team(runtime)
    start_sweep(runtime, capped, 50, priority=90)
    start_sweep(runtime, other, 2)
    held = claim_together(runtime, len(INSTANCES) * SLOTS)
    by_team = Counter(team_of(runtime, c.sweep_id) for c in held)
    assert by_team == {capped: 3, other: 2}
    finish(runtime, next(c for c in held if team_of(runtime, c.sweep_id) == capped))
    again = claim(runtime)
    assert again is not None
    assert team_of(runtime, again.sweep_id) == capped


def test_a_sweep_whose_start_message_is_not_handled_yet_is_started_by_its_first_claim(
    runtime: Runtime,
) -> None:
    """A busy farm's workers may take a while to handle a start message; the sweep is
    served at the next free slot all the same."""
    team = make_team(runtime)
    with runtime.sessions() as session:
        pending = sweeps.add_sweep(
            session, sweep_id=uuid4(), team_id=team, workflow="w", request={}, plan={}, total=1
        )
        runs.add_runs(session, pending.id, [runs.NewRun(0, {})])
        session.commit()
    held = claim(runtime)
    assert held is not None
    assert held.sweep_id == pending.id
    with runtime.sessions() as session:
        started = sweeps.find_sweep(session, pending.id)
        assert started is not None
        assert started.status is SweepStatus.RUNNING
        assert started.started_at is not None


def test_a_stopped_sweep_is_not_claimed(runtime: Runtime) -> None:
    sweep_id = start_sweep(runtime, make_team(runtime), 3)
    with runtime.sessions() as session:
        assert sweeps.move_sweep(session, sweep_id, [SweepStatus.RUNNING], SweepStatus.FAILED)
        session.commit()
    assert claim(runtime) is None


@contextmanager
def only_two_instances(rt: Runtime, slots: int) -> Iterator[tuple[str, str]]:
    """gpu0 and gpu1 alone, of `slots` slots each."""
    with rt.sessions() as session:
        session.execute(sa.delete(Instance).where(Instance.url.in_(INSTANCES[2:])))
        session.commit()
    object.__setattr__(rt.settings, "instance_slots", slots)
    try:
        yield INSTANCES[0], INSTANCES[1]
    finally:
        object.__setattr__(rt.settings, "instance_slots", SLOTS)


@pytest.mark.parametrize("slots", [1, 2])
def test_two_instances_keep_one_checkpoint_each_through_a_sweep(
    runtime: Runtime, slots: int
) -> None:
    """2 checkpoints x 50 runs on 2 instances: each loads one checkpoint once."""
    with only_two_instances(runtime, slots) as pair:
        start_sweep(runtime, make_team(runtime), 100, models=2)
        loads: Counter[str] = Counter()
        holding: dict[str, str] = {}
        # Every slot claims at once each round, as two instances of equal speed would.
        while held := claim_together(runtime, 2 * slots):
            for one in held:
                loads[one.instance] += holding.get(one.instance) != one.model_key
                holding[one.instance] = one.model_key
            for one in held:
                finish(runtime, one)
    assert sorted(holding.values()) == ["m0", "m1"]
    assert loads == dict.fromkeys(pair, 1)


def lock_waiters(rt: Runtime) -> int:
    """Backends of this database waiting for a row or transaction lock now."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with rt.sessions() as session:
        return session.scalar(query) or 0


def test_a_claim_on_the_other_instance_waits_for_the_model_just_planned_and_takes_the_other(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two instances freeing up at once, played in the order that would load a checkpoint
    twice: x's claim has routed x to m0 but not committed when y's claim chooses. y's choice
    must wait for x's (the team's lock) and then see it."""
    planned, go = threading.Event(), threading.Event()
    route = instances.set_model_key

    def route_then_hold(session: Session, url: str, model_key: str) -> None:
        route(session, url, model_key)
        if not planned.is_set():  # only the first claim holds its transaction open
            planned.set()
            assert go.wait(10)

    monkeypatch.setattr(instances, "set_model_key", route_then_hold)
    with only_two_instances(runtime, 1) as (x, y), ThreadPoolExecutor(2) as pool:
        # The first claim tries x first, the second y: y's claim locks y, not x, so only its
        # choice of a run can wait.
        trying_first(monkeypatch, iter([x, y]))
        start_sweep(runtime, make_team(runtime), 100, models=2)
        first = pool.submit(take_work, runtime, "task-x")
        assert planned.wait(10)
        second = pool.submit(take_work, runtime, "task-y")
        deadline = time.monotonic() + 10
        while not second.done() and lock_waiters(runtime) == 0:
            assert time.monotonic() < deadline, "y's claim neither waited nor finished"
            time.sleep(0.01)
        go.set()
        on_x, on_y = first.result(), second.result()
    assert on_x is not None
    assert on_y is not None
    assert (on_x.claim.instance, on_x.claim.model_key) == (x, "m0")
    assert (on_y.claim.instance, on_y.claim.model_key) == (y, "m1")


def test_the_active_table_has_a_row_exactly_while_the_sweep_has_queued_runs(
    runtime: Runtime,
) -> None:
    sweep_id = start_sweep(runtime, make_team(runtime), 2)

    def active_rows() -> int:
        with runtime.sessions() as session:
            query = sa.select(sa.func.count()).where(ActiveSweep.sweep_id == sweep_id)
            return session.scalar(query) or 0

    first, second = claim(runtime), claim(runtime)
    assert first is not None
    assert second is not None
    assert active_rows() == 0
    with runtime.sessions() as session:
        assert runs.requeue_run(session, first, {"kind": "transport"})
        session.commit()
    assert active_rows() == 1


def hold_models(rt: Runtime, models: dict[str, str]) -> None:
    with rt.sessions() as session:
        for url, key in models.items():
            instances.set_model_key(session, url, key)
        session.commit()


def test_near_a_sweeps_end_an_instance_leaves_a_model_to_the_instance_serving_it(
    runtime: Runtime,
) -> None:
    x, y = INSTANCES[:2]
    sweep_id = start_sweep(runtime, make_team(runtime), 5)  # all of model m0
    hold_models(runtime, {x: "other", y: "m0"})
    with runtime.sessions() as session:
        first = claims.next_queued(session, sweep_id, None)
        assert first is not None
        assert runs.start_run(session, first.id, y, "t-y", utc_now()) is not None
        session.commit()
    with runtime.sessions() as session:
        # 4 runs of m0 left, y serving them: loading m0 on x too would cost more than it saves.
        assert claims.next_run(session, x, "other", None, STARTING) is None


def test_an_instance_takes_a_models_last_runs_when_its_holder_moved_on(runtime: Runtime) -> None:
    x, y = INSTANCES[:2]
    sweep_id = start_sweep(runtime, make_team(runtime), 5)
    elsewhere = start_sweep(runtime, make_team(runtime), 1)
    hold_models(runtime, {x: "other", y: "m0"})
    with runtime.sessions() as session:
        # y holds m0 but is busy with another sweep; an idle y would count as serving m0.
        busy = claims.next_queued(session, elsewhere, None)
        assert busy is not None
        assert runs.start_run(session, busy.id, y, "t-y", utc_now()) is not None
        session.commit()
    with runtime.sessions() as session:
        run = claims.next_run(session, x, "other", None, STARTING)
        assert run is not None
        assert run.sweep_id == sweep_id


def test_a_retry_that_must_avoid_the_only_instance_serving_its_model_is_taken_elsewhere(
    runtime: Runtime,
) -> None:
    """x holds m0 and y m1, and the last queued run is of m0 but failed on x: x may not take
    it, so y must load m0 rather than leave it queued for ever."""
    x, y, *others = INSTANCES
    sweep = start_sweep(runtime, make_team(runtime), 1)  # one run, of model m0
    with runtime.sessions() as session:
        session.execute(sa.update(Instance).where(Instance.url.in_(others)).values(drained=True))
        session.execute(sa.update(Instance).where(Instance.url == x).values(model_key="m0"))
        session.execute(sa.update(Instance).where(Instance.url == y).values(model_key="m1"))
        failed_on_x = {"kind": "timeout", "message": "stalled", FAILED_ON: x}
        session.execute(sa.update(Run).where(Run.sweep_id == sweep).values(error=failed_on_x))
        session.commit()
    taken = [c for c in (claim(runtime), claim(runtime)) if c is not None]
    assert [(c.sweep_id, c.instance, c.model_key) for c in taken] == [(sweep, y, "m0")]


def test_a_claim_goes_to_the_emptiest_instance(runtime: Runtime) -> None:
    """An instance just back in the pool is empty: claims must reach it, or the instances
    already busy would keep every run to themselves."""
    start_sweep(runtime, make_team(runtime), 40)
    held = [c for c in (claim(runtime) for _ in range(len(INSTANCES) * SLOTS)) if c is not None]
    emptied = next(c.instance for c in held if c.instance != held[0].instance)
    for run in held:
        if run.instance == emptied:
            finish(runtime, run)  # now idle, as if it had just come back
    finish(runtime, held[0])  # one slot free on held[0]'s instance, two on `emptied`
    taken = claim(runtime)
    assert taken is not None
    assert taken.instance == emptied
