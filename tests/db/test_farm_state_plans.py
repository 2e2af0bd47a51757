"""What `/metrics` and `/readyz` read at scrape time never scans the runs table: with
100,000 runs queued or finished, each statement reads the sweeps' counters, `active_sweeps`,
`instances`, or the partial index of running runs (EXPLAIN on the real Postgres). The
numbers they give are the runs' own, recounted."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.engine import make_engine
from app.domain.states import RunStatus, SweepStatus
from app.stores import claims, farm_state, instances, runs, sweeps, teams
from tests.conftest import scratch_database
from tests.db.test_claim_plans import Statement, nodes, plan_of

SWEEPS = 10
RUNS_PER_SWEEP = 10_000
FINISHED_SWEEPS = 5  # half the runs succeeded, half queued
GPUS = [f"http://gpu{n}:8188" for n in range(4)]


@pytest.fixture(scope="module")
def farm() -> Iterator[sa.Engine]:
    with scratch_database("farm") as url:
        engine = make_engine(url)
        with engine.connect() as connection:
            session = Session(bind=connection)
            team_ids = [teams.get_or_create_team(session, f"t{n}").id for n in range(3)]
            for n in range(SWEEPS):
                sweep_id = _sweep(session, team_ids[n % len(team_ids)])
                if n < FINISHED_SWEEPS:
                    _finish_all(session, sweep_id)
            instances.sync_instances(session, [(url, ()) for url in GPUS])
            for n, url in enumerate(GPUS):  # some runs in flight on the last sweep
                queued = claims.next_queued(session, sweep_id, None)
                assert queued is not None
                runs.start_run(session, queued.id, url, f"task{n}", utc_now())
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
        yield engine
        engine.dispose()


def _sweep(session: Session, team_id: UUID) -> UUID:
    sweep_id = uuid4()
    sweeps.add_sweep(
        session, sweep_id=sweep_id, team_id=team_id, workflow="w", request={}, plan={},
        total=RUNS_PER_SWEEP,
    )  # fmt: skip
    runs.add_runs(
        session, sweep_id, (runs.NewRun(i, {"seed": i}, i) for i in range(RUNS_PER_SWEEP))
    )
    sweeps.move_sweep(session, sweep_id, [SweepStatus.PENDING], SweepStatus.RUNNING)
    return sweep_id


def _finish_all(session: Session, sweep_id: UUID) -> None:
    """Every run succeeded, the counters moved as the worker moves them."""
    session.execute(
        sa.text("UPDATE runs SET status = 'succeeded' WHERE sweep_id = :id"), {"id": sweep_id}
    )
    sweeps.move_counts(
        session, sweep_id, {RunStatus.QUEUED: -RUNS_PER_SWEEP, RunStatus.SUCCEEDED: RUNS_PER_SWEEP}
    )
    sweeps.move_sweep(session, sweep_id, [SweepStatus.RUNNING], SweepStatus.SUCCEEDED)


def scrape_statements() -> dict[str, Statement]:
    now = utc_now()
    return {
        "sweeps and runs by status": (farm_state.SWEEP_TALLY, {}),
        "queue depth per team and priority": (farm_state.QUEUE_DEPTHS, {}),
        "healthy instances": (farm_state.HEALTHY_CHECKED, {"urls": GPUS, "since": now}),
    }


@pytest.mark.parametrize("name", list(scrape_statements()), ids=lambda n: n.replace(" ", "-"))
def test_no_scrape_statement_reads_the_runs_table(farm: sa.Engine, name: str) -> None:
    plan = plan_of(farm, scrape_statements()[name])
    read = {n.get("Relation Name") for n in nodes(plan)}
    assert "runs" not in read, f"{name}: {plan}"


def test_the_prompts_per_instance_come_from_the_partial_index_of_running_runs(
    farm: sa.Engine,
) -> None:
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        sent.append((sql, parameters))

    with farm.connect() as connection:
        sa.event.listen(connection, "before_cursor_execute", capture)
        pool = instances.pool_with_prompts(Session(bind=connection))
        sa.event.remove(connection, "before_cursor_execute", capture)
        sql, parameters = sent[-1]
        explained = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", parameters)
        plan: dict[str, Any] = explained.scalar_one()[0]["Plan"]
    scans = [n["Node Type"] for n in nodes(plan) if n.get("Relation Name") == "runs"]
    assert scans, plan
    assert "Seq Scan" not in scans, plan
    assert {row.url: prompts for row, prompts in pool} == dict.fromkeys(GPUS, 1)


def test_the_tallies_equal_a_recount_of_the_runs(farm: sa.Engine) -> None:
    with Session(farm) as session:
        tallies = farm_state.sweep_tallies(session)
        depths = farm_state.queue_depths(session)
        recount: dict[str, int] = dict(
            session.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY status")).all()
        )
    by_status = {status: sum(t.runs[status] for t in tallies) for status in RunStatus}
    assert {s.value: n for s, n in by_status.items() if n} == recount
    assert {t.status: t.sweeps for t in tallies} == {"succeeded": 5, "running": 5}
    assert sum(d.queued for d in depths) == recount["queued"]
    assert {d.team for d in depths} == {"t0", "t1", "t2"}
