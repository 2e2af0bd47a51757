"""HTTP routes that put more work into an existing sweep, ended or not: retrying its failed
runs and extending it with new cells. Both answer the sweep as it now is."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Body

from app.api.deps import CeleryDep, NodeSpecsDep, SessionDep, SettingsDep, TeamDep
from app.api.errors import REJECTED_RESPONSE, Conflict, NotFound, QueueFull, responses
from app.api.presenters import sweep_read
from app.api.schemas.sweeps import SweepExtend, SweepReopened, SweepRetry
from app.db.models import Sweep
from app.domain.states import RunStatus
from app.services import extending, retrying
from app.stores import sweeps as sweep_store
from app.stores import workflows as workflow_store

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


@router.post(
    "/{sweep_id}/retry",
    response_model=SweepReopened,
    responses=responses(NotFound, Conflict, QueueFull),
    summary="Retry a sweep's failed runs",
)
def retry_sweep(
    sweep_id: UUID,
    session: SessionDep,
    celery: CeleryDep,
    team_id: TeamDep,
    body: SweepRetry | None = Body(default=None),  # noqa: B008
) -> SweepReopened:
    """Queue the sweep's failed runs (and cancelled ones, if `status` names them) again as
    new attempts; an ended sweep runs again and its grids are rebuilt. 409 when no run
    matches, or while the sweep is finalizing."""
    wanted = body or SweepRetry()
    sweep = _visible_sweep(session, team_id, sweep_id)
    statuses = [RunStatus(status) for status in wanted.status]
    queued = retrying.retry_runs(session, celery, sweep, statuses, wanted.error_type)
    return _reopened(session, sweep, queued)


@router.post(
    "/{sweep_id}/extend",
    response_model=SweepReopened,
    responses={**REJECTED_RESPONSE, **responses(NotFound, Conflict, QueueFull)},
    summary="Add axis values, an axis or seeds to a sweep",
)
def extend_sweep(
    sweep_id: UUID,
    body: SweepExtend,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
    node_specs: NodeSpecsDep,
    team_id: TeamDep,
) -> SweepReopened:
    """Only the new cells run; existing runs keep their index and results. 422 for a value
    already present, an unknown parameter, or a zip or sampled sweep; 409 for a cancelled
    or finalizing one."""
    sweep = _visible_sweep(session, team_id, sweep_id)
    queued = extending.extend_sweep(
        session,
        sweep,
        body,
        max_runs=settings.max_runs_per_sweep,
        celery=celery,
        object_info=node_specs.current(),
    )
    return _reopened(session, sweep, queued)


def _visible_sweep(session: SessionDep, team_id: UUID, sweep_id: UUID) -> Sweep:
    sweep = sweep_store.get_sweep(session, sweep_id, team_id)
    if sweep is None:
        raise NotFound(f"no sweep {sweep_id}")
    return sweep


def _reopened(session: SessionDep, sweep: Sweep, queued: int) -> SweepReopened:
    session.refresh(sweep)
    pinned = workflow_store.pinned_numbers(session, sweep)
    read = sweep_read(sweep, sweep_store.run_counts(sweep), pinned)
    return SweepReopened(**read.model_dump(), queued=queued)
