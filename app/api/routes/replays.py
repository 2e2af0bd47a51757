"""HTTP route replaying a sweep: the same runs again, as a new sweep linked to its source."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Depends, Response, status

from app.api.deps import (
    BrokerProbeDep,
    CeleryDep,
    NodeSpecsDep,
    SessionDep,
    SettingsDep,
    TeamDep,
    sync_shipped_workflows,
)
from app.api.errors import REJECTED_RESPONSE, NotFound, Unavailable, responses
from app.api.presenters import sweep_read
from app.api.schemas.replays import SweepReplay
from app.api.schemas.sweeps import SweepRead
from app.domain.states import RunStatus
from app.services import replaying
from app.stores import sweeps as sweep_store
from app.stores import workflows as workflow_store

router = APIRouter(prefix="/sweeps", tags=["sweeps"])


@router.post(
    "/{sweep_id}/replay",
    status_code=status.HTTP_201_CREATED,
    response_model=SweepRead,
    responses={**REJECTED_RESPONSE, **responses(NotFound, Unavailable)},
    summary="Replay a sweep",
    dependencies=[Depends(sync_shipped_workflows)],
)
def replay_sweep(
    sweep_id: UUID,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
    node_specs: NodeSpecsDep,
    team_id: TeamDep,
    broker: BrokerProbeDep,
    body: SweepReplay | None = None,
) -> SweepRead:
    """A new sweep with exactly the source's runs (values, drawn seeds, sampled points) on
    the workflow version it pinned, `base` overriding values all its runs share."""
    source = sweep_store.get_sweep(session, sweep_id, team_id)
    if source is None:
        raise NotFound(f"no sweep {sweep_id}")
    if not broker.answers():
        raise Unavailable("the broker is unreachable, so nothing could start; nothing was stored")
    sweep = replaying.replay_sweep(
        session,
        source,
        (body or SweepReplay()).base,
        celery=celery,
        object_info=node_specs.current(),
        pool=settings.instances,
    )
    response.headers["Location"] = f"/v1/sweeps/{sweep.id}"
    return sweep_read(
        sweep, {RunStatus.QUEUED: sweep.total}, workflow_store.pinned_numbers(session, sweep)
    )
