"""HTTP routes of the workflows resource: what is registered and what each one accepts."""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import RegistryDep
from app.api.errors import NotFound, responses
from app.api.schemas.common import Page
from app.api.schemas.workflows import ParameterRead, WorkflowRead, WorkflowSummary
from app.registry import Workflow

router = APIRouter(prefix="/workflows", tags=["workflows"])


@router.get("", response_model=Page[WorkflowSummary], summary="Registered workflows")
def list_workflows(registry: RegistryDep) -> Page[WorkflowSummary]:
    items = [_summary(w) for w in sorted(registry, key=lambda w: w.name)]
    return Page(items=items, total=len(items), offset=0, limit=max(len(items), 1))


@router.get(
    "/{name}",
    response_model=WorkflowRead,
    responses=responses(NotFound),
    summary="A workflow's parameter contract",
)
def read_workflow(name: str, registry: RegistryDep) -> WorkflowRead:
    workflow = registry.get(name)
    if workflow is None:
        raise NotFound(f"no workflow named {name!r}")
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
        for p in workflow.contract.parameters.values()
    ]
    return WorkflowRead(
        **_summary(workflow).model_dump(),
        parameters=parameters,
        json_schema=dict(workflow.contract.schema),
    )


def _summary(workflow: Workflow) -> WorkflowSummary:
    return WorkflowSummary(
        name=workflow.name, title=workflow.title, description=workflow.description
    )
