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
from app.db.models import Run, Sweep
from app.domain.states import RunStatus, SweepStatus
from app.stores import claims, instances, outputs, runs, sweeps, teams
from app.stores.eligibility import fits_params
from app.stores.outputs import NewOutput
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
                queued = claims.next_queued(session, last, None)
                assert queued is not None
                runs.start_run(session, queued.id, f"http://gpu{n}:8188", f"t{n}", utc_now())
            session.commit()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
        yield engine, last
        engine.dispose()


Statement = tuple[sa.Executable, dict[str, Any]]


def plan_of(engine: sa.Engine, statement: Statement) -> dict[str, Any]:
    """The plan of the statement as the claim sends it: run once in a transaction rolled back
    (so expanding parameters are rendered as they are then), then EXPLAINed."""
    sent: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, sql: str, parameters: Any, *_: Any) -> None:
        sent.append((sql, parameters))

    query, params = statement
    with engine.connect() as connection:
        sa.event.listen(connection, "before_cursor_execute", capture)
        with connection.begin() as transaction:
            connection.execute(query, params)
            transaction.rollback()
        sa.event.remove(connection, "before_cursor_execute", capture)
        sql, parameters = sent[-1]
        row = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {sql}", parameters).scalar_one()
    plan: dict[str, Any] = row[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


INSTANCE = "http://gpu0:8188"


def statements(sweep_id: UUID) -> dict[str, Statement]:
    """Every statement of a claim that reads runs, with the parameters a claim binds."""
    avoid = claims.probe_params(sweep_id, "m1", INSTANCE)
    plain = claims.probe_params(sweep_id, "m1", None)
    return {
        "run a task holds": (runs._CLAIMED_BY, {"task_id": "t3"}),
        "prompts per instance": (instances._POOL, {"now": utc_now()}),
        "the emptiest instance, locked": (
            instances._LOCK_EMPTIEST,
            {"now": utc_now(), "slots": 3},
        ),
        "runs in flight, sweeps waiting": (claims.IN_FLIGHT_AND_WAITING, fits_params(())),
        "teams of running runs": (claims.RUNNING_TEAMS, {}),
        "next run of a model": (claims.MODEL_PROBES[False], plain),
        "next run of a model, avoiding": (claims.MODEL_PROBES[True], avoid),
        "where a model's next run stands": (claims.ORDER_PROBES[True], avoid),
        "next run in dispatch order": (claims.HEAD_PROBES[False], plain),
        "next run, avoiding": (claims.HEAD_PROBES[True], avoid),
        "models of a sweep": (claims.MODELS, {"sweep_id": sweep_id}),
        "models serving a sweep": (
            claims.SERVING_MODELS,
            {"sweep_id": sweep_id, "instance": INSTANCE},
        ),
        "backlog of a model": (claims.BACKLOGS[True], {**avoid, "upto": 20}),
        "start a run": (runs._START, _start_params(sweep_id)),
        "record a success": (runs._SUCCEEDED_COUNTED, _success_params(sweep_id)),
    }


def _start_params(sweep_id: UUID) -> dict[str, Any]:
    now = utc_now()
    return {
        "run_id": sweep_id,  # no such run: the plan is what matters
        "to_instance": INSTANCE,
        "as_prompt": "p",
        "task_id": "t",
        "lease_until": now,
        "now": now,
    }


def _success_params(sweep_id: UUID) -> dict[str, Any]:
    claim = runs.Claim(sweep_id, sweep_id, 0, {}, 1, INSTANCE, "m1")  # no such run
    return {
        "run_id": claim.run_id,
        "attempt": claim.attempt,
        "to_status": "succeeded",
        "report": None,
        "now": utc_now(),
        "add_running_count": -1,
        "add_succeeded_count": 1,
        **outputs.output_rows([NewOutput(0, "image", "x/a.png", "image/png", 1, "0" * 64)]),
        "at_url": INSTANCE,
    }


@pytest.mark.parametrize("name", list(statements(uuid4())), ids=lambda name: name.replace(" ", "-"))
def test_no_claim_statement_scans_or_sorts_runs(loaded: tuple[sa.Engine, UUID], name: str) -> None:
    engine, sweep_id = loaded
    plan = plan_of(engine, statements(sweep_id)[name])
    every = list(nodes(plan))
    scans = [n["Node Type"] for n in every if n.get("Relation Name") == "runs"]
    assert scans, f"{name}: runs not read at all? {plan}"
    assert "Seq Scan" not in scans, f"{name}: {plan}"
    # A sort of the few instances is fine, even by how many runs each holds; a sort of runs
    # grows with the queue.
    sorts = [n for n in every if "Sort" in n["Node Type"]]
    assert not [s for s in sorts if _sorts_runs(s)], f"{name}: {plan}"


def test_the_check_tells_a_sort_of_runs_from_a_sort_of_instances(
    loaded: tuple[sa.Engine, UUID],
) -> None:
    """What the test above leans on: the first-come-first-served claim this issue replaced
    sorts queued runs and is caught; ordering instances by their runs in flight is not."""
    engine, _ = loaded
    oldest_first = (
        sa.select(Run.id)
        .join(Sweep, Sweep.id == Run.sweep_id)
        .where(Run.status == RunStatus.QUEUED)
        .order_by(Sweep.created_at, Run.index)
        .limit(1)
    )
    plan = plan_of(engine, (oldest_first, {}))
    assert [node for node in nodes(plan) if "Sort" in node["Node Type"] and _sorts_runs(node)]
    emptiest = plan_of(engine, (instances._LOCK_EMPTIEST, {"now": utc_now(), "slots": 3}))
    assert [node for node in nodes(emptiest) if "Sort" in node["Node Type"]]
    assert not [
        node for node in nodes(emptiest) if "Sort" in node["Node Type"] and _sorts_runs(node)
    ]


def _sorts_runs(sort: dict[str, Any]) -> bool:
    """Whether the rows a sort orders are runs: runs are read beneath it other than through
    an aggregate, whose rows are its groups (a sort beneath the aggregate is checked on its
    own)."""

    def rows_of_runs(node: dict[str, Any]) -> bool:
        if node.get("Relation Name") == "runs":
            return True
        if node["Node Type"] == "Aggregate":
            return False
        return any(rows_of_runs(child) for child in node.get("Plans", []))

    return any(rows_of_runs(child) for child in sort.get("Plans", []))


def test_the_models_of_a_sweep_come_out_distinct_and_complete(
    loaded: tuple[sa.Engine, UUID],
) -> None:
    engine, sweep_id = loaded
    with engine.connect() as connection:
        found = connection.scalars(claims.MODELS, {"sweep_id": sweep_id})
        assert list(found) == list(MODELS)
