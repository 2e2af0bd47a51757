"""A running sweep of queued runs made straight through the stores: the setup that the claim
tests share (no API, no preflight, no start message)."""

from __future__ import annotations

from uuid import UUID, uuid4

from app.domain.states import SweepStatus
from app.stores import runs, sweeps, teams
from workers.runtime import Runtime


def running_sweep(
    rt: Runtime,
    count: int,
    *,
    workflow: str = "sd15-txt2img",
    model_key: str = "",
    required_tags: str = "",
) -> UUID:
    """A running sweep of a new team with `count` queued runs, claimed in index order."""
    with rt.sessions() as session:
        team = teams.get_or_create_team(session, f"team-{uuid4().hex[:8]}")
        sweep = sweeps.add_sweep(
            session,
            sweep_id=uuid4(),
            team_id=team.id,
            workflow=workflow,
            request={},
            plan={},
            total=count,
            required_tags=required_tags,
        )
        new_runs = (runs.NewRun(i, {"seed": i}, i, model_key) for i in range(count))
        runs.add_runs(session, sweep.id, new_runs)
        assert sweeps.move_sweep(session, sweep.id, [SweepStatus.PENDING], SweepStatus.RUNNING)
        session.commit()
        return sweep.id
