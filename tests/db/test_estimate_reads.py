"""The reads an estimate makes: a workflow's latest succeeded runs on the pool (and only
its own, not another team's workflow of the same name), the queue ahead, usable instances."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Instance, Run, Sweep, Team, Workflow, WorkflowVersion
from app.domain.states import RunStatus
from app.stores import estimates, runs, sweeps, teams

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
GPU1, GPU2 = "http://gpu1:8188", "http://gpu2:8188"


def make_team(session: Session) -> Team:
    return teams.get_or_create_team(session, f"team-{uuid4().hex[:8]}")


def make_version(session: Session, name: str, team: Team | None) -> UUID:
    workflow = Workflow(name=name, team_id=None if team is None else team.id)
    session.add(workflow)
    session.flush()
    version = WorkflowVersion(
        workflow_id=workflow.id, version=1, content_hash=uuid4().hex, graph={}, contract={}
    )
    session.add(version)
    session.flush()
    return version.id


def finished_sweep(
    session: Session, team: Team, name: str, version_id: UUID, count: int, instance: str = GPU1
) -> Sweep:
    """`count` succeeded runs, run n from T0+n s to T0+n+1 s (prompt done half-way)."""
    sweep = sweeps.add_sweep(
        session,
        sweep_id=uuid4(),
        team_id=team.id,
        workflow=name,
        workflow_version_id=version_id,
        request={},
        plan={"fixed": {"steps": 20}, "axes": [], "mode": "cartesian", "seeds": []},
        total=count,
    )
    runs.add_runs(session, sweep.id, [runs.NewRun(n, {"seed": n}) for n in range(count)])
    for n in range(count):
        session.execute(
            sa.update(Run)
            .where(Run.sweep_id == sweep.id, Run.index == n)
            .values(
                status=RunStatus.SUCCEEDED,
                instance=instance,
                started_at=T0 + timedelta(seconds=n),
                prompt_done_at=T0 + timedelta(seconds=n + 0.5) if n % 2 else None,
                finished_at=T0 + timedelta(seconds=n + 1),
            )
        )
    counts = {"succeeded_count": count, "queued_count": 0}
    session.execute(sa.update(Sweep).where(Sweep.id == sweep.id).values(**counts))
    return sweep


def test_the_latest_succeeded_runs_of_the_workflow_on_the_pool(db_session: Session) -> None:
    team, other = make_team(db_session), make_team(db_session)
    name = f"wf-{uuid4().hex[:6]}"
    mine = make_version(db_session, name, team)
    theirs = make_version(db_session, name, other)  # same name, another team's workflow
    finished_sweep(db_session, team, name, mine, 3)
    finished_sweep(db_session, other, name, theirs, 5)
    finished_sweep(db_session, team, name, mine, 4, instance="http://gone:8188")
    found = estimates.recent_runs(db_session, name, mine, [GPU1, GPU2])
    assert len(found) == 3
    assert {run.instance for run in found} == {GPU1}
    assert all(run.fixed == {"steps": 20} for run in found)
    by_seed = {run.own_values["seed"]: run for run in found}
    # Its prompt done time where set, else when the run finished.
    assert by_seed[1].ended_at - by_seed[1].started_at == timedelta(seconds=0.5)
    assert by_seed[2].ended_at - by_seed[2].started_at == timedelta(seconds=1)
    assert estimates.recent_runs(db_session, name, mine, []) == []


def test_the_history_read_is_bounded(db_session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimates, "HISTORY_RUNS", 5)
    team = make_team(db_session)
    name = f"wf-{uuid4().hex[:6]}"
    version = make_version(db_session, name, team)
    for _ in range(4):
        finished_sweep(db_session, team, name, version, 3)
    assert len(estimates.recent_runs(db_session, name, version, [GPU1])) == 5


def test_the_queue_ahead_is_every_teams_queued_runs_at_or_above_a_priority(
    db_session: Session,
) -> None:
    team = make_team(db_session)
    before = {p: estimates.queued_at_or_above(db_session, p) for p in (10, 90)}
    sweep = sweeps.add_sweep(
        db_session,
        sweep_id=uuid4(),
        team_id=team.id,
        workflow="x",
        request={},
        plan={},
        total=7,
        priority=50,
    )
    runs.add_runs(db_session, sweep.id, [runs.NewRun(n, {}) for n in range(7)])
    assert estimates.queued_at_or_above(db_session, 10) == before[10] + 7
    assert estimates.queued_at_or_above(db_session, 90) == before[90]


def test_drained_instances_do_not_count_and_unlisted_ones_hold_nothing(
    db_session: Session,
) -> None:
    db_session.execute(sa.delete(Instance))
    db_session.add_all(
        [
            Instance(url=GPU1, tags=[], model_key="abc"),
            Instance(url=GPU2, tags=[], drained=True),
        ]
    )
    db_session.flush()
    usable = estimates.usable_instances(db_session, [GPU1, GPU2, "http://new:8188"])
    assert usable == {GPU1: "abc", "http://new:8188": None}
