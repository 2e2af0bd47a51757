"""Every statement of a claim reads runs through an index, with no sort over runs, so a claim
costs the same with 20 queued runs or 20,000 (EXPLAIN on the real Postgres)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.base import utc_now
from app.db.engine import make_engine
from app.domain.states import SweepStatus
from app.stores import claims, runs, sweeps, teams
from tests.conftest import scratch_database

SWEEPS = 20
RUNS_PER_SWEEP = 1_000
MODELS = ("m0", "m1", "m2")


@pytest.fixture(scope="module")
def loaded() -> Iterator[tuple[sa.Engine, UUID]]:
    """20,000 runs in 20 running sweeps of 5 teams, 8 of them running; analysed."""
    with scratch_database("plans") as url:
        engine = make_engine(url)
        with engine.connect() as connection:
            session = Session(bind=connection)
            team_ids = [teams.get_or_create_team(session, f"t{n}").id for n in range(5)]
            last = uuid4()
            for n in range(SWEEPS):
                last = uuid4()
                sweeps.add_sweep(
                    session,
                    sweep_id=last,
                    team_id=team_ids[n % len(team_ids)],
                    workflow="w",
                    request={},
                    plan={},
                    total=RUNS_PER_SWEEP,
                )
                new = (
                    runs.NewRun(i, {"seed": i}, i, MODELS[i * len(MODELS) // RUNS_PER_SWEEP])
                    for i in range(RUNS_PER_SWEEP)
                )
                runs.add_runs(session, last, new)
                sweeps.move_sweep(session, last, [SweepStatus.PENDING], SweepStatus.RUNNING)
            for n in range(8):  # a pool's worth of runs in flight
                queued = session.scalars(claims.head_probe(last, None)).one()
                runs.start_run(session, queued.id, f"http://gpu{n}:8188", f"t{n}", utc_now())
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
        yield engine, last
        engine.dispose()


def plan_of(engine: sa.Engine, statement: sa.Select[Any]) -> dict[str, Any]:
    with engine.connect() as connection:
        compiled = statement.compile(dialect=connection.dialect)
        sql = f"EXPLAIN (FORMAT JSON) {compiled}"
        row = connection.exec_driver_sql(sql, compiled.params).scalar_one()
    plan: dict[str, Any] = row[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def statements(sweep_id: UUID) -> dict[str, sa.Select[Any]]:
    instance = "http://gpu0:8188"
    return {
        "teams of running runs": claims.running_teams_query(),
        "next run of a model": claims.model_probe(sweep_id, "m1", None),
        "next run of a model, avoiding": claims.model_probe(sweep_id, "m1", instance),
        "where a model's next run stands": claims.model_order_probe(sweep_id, "m2", instance),
        "next run in dispatch order": claims.head_probe(sweep_id, None),
        "next run, avoiding": claims.head_probe(sweep_id, instance),
        "models of a sweep": claims.models_query(sweep_id),
        "models serving a sweep": claims.serving_models_query(sweep_id, instance),
        "backlog of a model": claims.backlog_query(sweep_id, "m0", instance, 20),
    }


@pytest.mark.parametrize("name", list(statements(uuid4())), ids=lambda name: name.replace(" ", "-"))
def test_no_claim_statement_scans_or_sorts_runs(loaded: tuple[sa.Engine, UUID], name: str) -> None:
    engine, sweep_id = loaded
    plan = plan_of(engine, statements(sweep_id)[name])
    every = list(nodes(plan))
    scans = [n["Node Type"] for n in every if n.get("Relation Name") == "runs"]
    assert scans, f"{name}: runs not read at all? {plan}"
    assert "Seq Scan" not in scans, f"{name}: {plan}"
    assert not [n for n in every if "Sort" in n["Node Type"]], f"{name}: {plan}"


def test_the_models_of_a_sweep_come_out_distinct_and_complete(
    loaded: tuple[sa.Engine, UUID],
) -> None:
    engine, sweep_id = loaded
    with engine.connect() as connection:
        assert list(connection.scalars(claims.models_query(sweep_id))) == list(MODELS)
