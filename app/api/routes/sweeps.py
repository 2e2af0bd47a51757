"""HTTP routes of the sweeps resource: submit, list, inspect, list runs."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from app.api.deps import (
    BrokerProbeDep,
    CeleryDep,
    EngineDep,
    NodeSpecsDep,
    SessionDep,
    SettingsDep,
    TeamDep,
    sync_shipped_workflows,
)
from app.api.errors import REJECTED_RESPONSE, Conflict, NotFound, Unavailable, responses
from app.api.prebuilt import answer_json_autocommit, answer_json_read
from app.api.presenters import run_read, sweep_read, sweep_summary
from app.api.schemas.common import Page
from app.api.schemas.sweeps import (
    RunRead,
    SweepCreate,
    SweepDryRun,
    SweepRead,
    SweepSubmitted,
    SweepSummary,
)
from app.api.schemas.webhooks import WebhookCreated
from app.db.models import Sweep
from app.domain.assignments import plan_fixed
from app.domain.states import RunStatus
from app.services import cancelling, pausing, webhooks
from app.services import sweeps as sweep_service
from app.stores import runs as run_store
from app.stores import sweeps as sweep_store
from app.stores import workflows as workflow_store

router = APIRouter(prefix="/sweeps", tags=["sweeps"])

Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SweepSubmitted | SweepDryRun,
    responses={
        **REJECTED_RESPONSE,
        **responses(Unavailable),
        200: {"model": SweepDryRun, "description": "With dry_run=true: what it would cost."},
    },
    summary="Submit a sweep",
    dependencies=[Depends(sync_shipped_workflows)],
)
def create_sweep(
    body: SweepCreate,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    celery: CeleryDep,
    node_specs: NodeSpecsDep,
    team_id: TeamDep,
    broker: BrokerProbeDep,
    dry_run: Annotated[bool, Query(description="Validate and estimate; store nothing.")] = False,
) -> SweepSubmitted | SweepDryRun:
    """Validate the sweep against its workflow's contract and the pool's node specs, expand
    it, store its runs and start it; with `dry_run=true`, answer its estimate instead."""
    webhook = None
    if body.webhook is not None:
        spec = body.webhook
        webhook = webhooks.prepare_endpoint(
            spec.url, spec.events, settings.webhook_policy, at=("webhook",)
        )
    if dry_run:
        response.status_code = status.HTTP_200_OK
        return sweep_service.dry_run_sweep(
            session,
            team_id,
            body,
            max_runs=settings.max_runs_per_sweep,
            object_info=node_specs.current(),
            pool=settings.instances,
        )
    if not broker.answers():
        raise Unavailable("the broker is unreachable, so nothing could start; nothing was stored")
    sweep = sweep_service.submit_sweep(
        session,
        team_id,
        body,
        max_runs=settings.max_runs_per_sweep,
        celery=celery,
        object_info=node_specs.current(),
        pool_tags=[instance.tags for instance in settings.instances],
        pool=settings.instances,
        webhook=webhook,
    )
    response.headers["Location"] = f"/v1/sweeps/{sweep.id}"
    read = sweep_read(
        sweep, {RunStatus.QUEUED: sweep.total}, workflow_store.pinned_numbers(session, sweep)
    )
    created = None
    if webhook is not None:
        endpoint = webhooks.get_endpoint(session, sweep.team_id, webhook.id)
        created = WebhookCreated.model_validate(endpoint, from_attributes=True)
    return SweepSubmitted(**dict(read), webhook=created)


@router.get("", response_model=Page[SweepSummary], summary="List sweeps, newest first")
def list_sweeps(
    session: SessionDep, team_id: TeamDep, offset: Offset = 0, limit: Limit = 50
) -> Page[SweepSummary]:
    sweeps, total = sweep_store.page_sweeps(session, team_id, offset, limit)
    items = [sweep_summary(s) for s in sweeps]
    return Page(items=items, total=total, offset=offset, limit=limit)


@router.get(
    "/{sweep_id}", response_model=SweepRead, responses=responses(NotFound), summary="A sweep"
)
async def read_sweep(
    sweep_id: UUID, session: SessionDep, engine: EngineDep, team_id: TeamDep
) -> Response:
    # The route clients poll: see app.api.prebuilt.
    def shown(connection: Connection) -> SweepRead:
        row = sweep_store.status_row(connection, sweep_id, team_id)
        if row is None:
            raise NotFound(f"no sweep {sweep_id}")
        pinned = None if row.version is None else (row.version, row.content_hash)
        return sweep_read(row, sweep_store.run_counts(row), pinned)

    return await answer_json_autocommit(session, engine, shown)


@router.get(
    "/{sweep_id}/runs",
    response_model=Page[RunRead],
    responses=responses(NotFound),
    summary="A sweep's runs, by index",
)
async def list_runs(
    sweep_id: UUID,
    session: SessionDep,
    engine: EngineDep,
    team_id: TeamDep,
    offset: Offset = 0,
    limit: Limit = 100,
    run_status: Annotated[RunStatus | None, Query(alias="status")] = None,
) -> Response:
    # Polled by dashboards: see app.api.prebuilt.
    def page(session: Session) -> Page[RunRead]:
        sweep = _visible_sweep(session, team_id, sweep_id)
        runs, total = run_store.page_runs(session, sweep.id, offset, limit, run_status)
        fixed = plan_fixed(sweep.plan)
        items = [run_read(run, fixed) for run in runs]
        return Page(items=items, total=total, offset=offset, limit=limit)

    return await answer_json_read(session, engine, page)


@router.post(
    "/{sweep_id}/cancel",
    response_model=SweepRead,
    responses=responses(NotFound),
    summary="Cancel a sweep",
)
def cancel_sweep(
    sweep_id: UUID, session: SessionDep, celery: CeleryDep, team_id: TeamDep
) -> SweepRead:
    """Queued runs stop at once; running prompts are withdrawn from their instances. A sweep
    that has already ended is returned unchanged."""
    sweep = _visible_sweep(session, team_id, sweep_id)
    cancelling.cancel_sweep(session, celery, sweep)
    session.refresh(sweep)
    return sweep_read(
        sweep, sweep_store.run_counts(sweep), workflow_store.pinned_numbers(session, sweep)
    )


@router.post(
    "/{sweep_id}/pause",
    response_model=SweepRead,
    responses=responses(NotFound, Conflict),
    summary="Pause a sweep",
)
def pause_sweep(sweep_id: UUID, session: SessionDep, team_id: TeamDep) -> SweepRead:
    """None of its queued runs starts until it is resumed; prompts already running finish and
    are recorded. A paused sweep is returned unchanged; one that has ended (or is finalizing,
    with nothing left to hold) is a 409."""
    sweep = _visible_sweep(session, team_id, sweep_id)
    try:
        pausing.pause_sweep(session, sweep)
    except pausing.WrongStatus as refused:
        raise Conflict(str(refused)) from None
    return _read_back(session, sweep)


@router.post(
    "/{sweep_id}/resume",
    response_model=SweepRead,
    responses=responses(NotFound, Conflict),
    summary="Resume a paused sweep",
)
def resume_sweep(
    sweep_id: UUID, session: SessionDep, celery: CeleryDep, team_id: TeamDep
) -> SweepRead:
    """Its queued runs are claimable again and the workers are woken, as at its start. A sweep
    that is not paused is returned unchanged; one that has ended is a 409."""
    sweep = _visible_sweep(session, team_id, sweep_id)
    try:
        pausing.resume_sweep(session, celery, sweep)
    except pausing.WrongStatus as refused:
        raise Conflict(str(refused)) from None
    return _read_back(session, sweep)


def _read_back(session: SessionDep, sweep: Sweep) -> SweepRead:
    session.refresh(sweep)
    return sweep_read(
        sweep, sweep_store.run_counts(sweep), workflow_store.pinned_numbers(session, sweep)
    )


def _visible_sweep(session: SessionDep, team_id: UUID, sweep_id: UUID) -> Sweep:
    sweep = sweep_store.get_sweep(session, sweep_id, team_id)
    if sweep is None:
        raise NotFound(f"no sweep {sweep_id}")
    return sweep
