"""HTTP routes of the workflows resource: what is registered, what each one accepts, and
registering a workflow or a new version of it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy.orm import Session

from app.api.deps import (
    CallerDep,
    EngineDep,
    NodeSpecsDep,
    SessionDep,
    TeamDep,
    sync_shipped_workflows,
)
from app.api.errors import REJECTED_RESPONSE, Conflict, Forbidden, NotFound, responses
from app.api.prebuilt import answer_json_read
from app.api.schemas.common import Page
from app.api.schemas.workflows import (
    ParameterRead,
    WorkflowCreate,
    WorkflowRead,
    WorkflowSummary,
    WorkflowVersionIn,
    WorkflowVersionRead,
)
from app.services import workflows as workflow_service
from app.services.workflows import PinnedWorkflow, WorkflowContent
from app.stores import workflows as workflow_store

router = APIRouter(
    prefix="/workflows", tags=["workflows"], dependencies=[Depends(sync_shipped_workflows)]
)

Offset = Annotated[int, Query(ge=0, le=1_000_000_000)]
Limit = Annotated[int, Query(ge=1, le=500)]


@router.get("", response_model=Page[WorkflowSummary], summary="Workflows your team can sweep")
async def list_workflows(session: SessionDep, engine: EngineDep, team_id: TeamDep) -> Response:
    """The global workflows and your team's own, by name, each at its latest version."""

    # Polled by dashboards: see app.api.prebuilt.
    def page(session: Session) -> Page[WorkflowSummary]:
        items = [
            _summary(workflow_service.pin(row, version))
            for row, version in workflow_store.list_visible_latest(session, team_id)
        ]
        return Page(items=items, total=len(items), offset=0, limit=max(len(items), 1))

    return await answer_json_read(session, engine, page)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WorkflowRead,
    responses={**REJECTED_RESPONSE, **responses(Forbidden, Conflict)},
    summary="Register a workflow",
)
def create_workflow(
    body: WorkflowCreate,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    node_specs: NodeSpecsDep,
) -> WorkflowRead:
    """Store its first version, owned by your team (or global, with an admin key), after the
    checks start-up applies to shipped files and, when the pool answers, its `/object_info`."""
    try:
        stored = workflow_service.register_workflow(
            session,
            caller,
            body.name,
            _content(body),
            make_global=body.global_,
            object_info=node_specs.current(),
        )
    except workflow_service.Forbidden as refused:
        raise Forbidden(str(refused)) from None
    except workflow_service.NameTaken as taken:
        raise Conflict(str(taken)) from None
    response.headers["Location"] = f"/v1/workflows/{body.name}"
    return _read(workflow_service.pin(stored.row, stored.version))


@router.put(
    "/{name}",
    response_model=WorkflowRead,
    responses={
        201: {"model": WorkflowRead, "description": "A new version was stored."},
        **REJECTED_RESPONSE,
        **responses(NotFound, Forbidden),
    },
    summary="Add a version of a workflow",
)
def put_workflow_version(
    name: str,
    body: WorkflowVersionIn,
    response: Response,
    session: SessionDep,
    caller: CallerDep,
    node_specs: NodeSpecsDep,
) -> WorkflowRead:
    """Store new content as the next immutable version (201); sweeps submitted from now on run
    it. Content identical to an existing version returns that version (200)."""
    try:
        stored = workflow_service.add_version(
            session, caller, name, _content(body), object_info=node_specs.current()
        )
    except workflow_service.UnknownWorkflow as unknown:
        raise NotFound(str(unknown)) from None
    except workflow_service.Forbidden as refused:
        raise Forbidden(str(refused)) from None
    if stored.created:
        response.status_code = status.HTTP_201_CREATED
    return _read(workflow_service.pin(stored.row, stored.version))


@router.get(
    "/{name}",
    response_model=WorkflowRead,
    responses=responses(NotFound),
    summary="A workflow's latest version and its parameter contract",
)
def read_workflow(name: str, session: SessionDep, team_id: TeamDep) -> WorkflowRead:
    pinned = workflow_service.latest_visible(session, team_id, name)
    if pinned is None:
        raise NotFound(f"no workflow named {name!r}")
    return _read(pinned)


@router.get(
    "/{name}/versions",
    response_model=Page[WorkflowVersionRead],
    responses=responses(NotFound),
    summary="A workflow's versions, newest first",
)
def list_versions(
    name: str, session: SessionDep, team_id: TeamDep, offset: Offset = 0, limit: Limit = 50
) -> Page[WorkflowVersionRead]:
    row = workflow_store.find_visible(session, team_id, name)
    if row is None:
        raise NotFound(f"no workflow named {name!r}")
    entries, total = workflow_store.page_versions(session, row.id, offset, limit)
    items = [
        WorkflowVersionRead(
            version=e.version.version,
            hash=e.version.content_hash,
            created_at=e.version.created_at,
            created_by=e.key_prefix,
            has_ui_graph=e.version.ui_graph is not None,
        )
        for e in entries
    ]
    return Page(items=items, total=total, offset=offset, limit=limit)


def _content(body: WorkflowVersionIn) -> WorkflowContent:
    return WorkflowContent(
        graph=body.graph,
        contract=body.contract,
        ui_graph=body.ui_graph,
        description=body.description,
    )


def _read(pinned: PinnedWorkflow) -> WorkflowRead:
    contract = pinned.workflow.contract
    parameters = [
        ParameterRead(
            name=p.name,
            type=p.type,
            default=p.default,
            minimum=p.minimum,
            maximum=p.maximum,
            multiple_of=p.multiple_of,
            enum=None if p.enum is None else list(p.enum),
            description=p.description,
        )
        for p in contract.parameters.values()
    ]
    return WorkflowRead(
        **_summary(pinned).model_dump(), parameters=parameters, json_schema=dict(contract.schema)
    )


def _summary(pinned: PinnedWorkflow) -> WorkflowSummary:
    workflow = pinned.workflow
    return WorkflowSummary(
        name=workflow.name,
        title=workflow.title,
        description=workflow.description,
        scope="global" if pinned.is_global else "team",
        version=pinned.version,
        hash=pinned.content_hash,
    )
