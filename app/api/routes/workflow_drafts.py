"""HTTP route that drafts a parameters contract for a workflow the caller brings: the first
step of registering a new workflow, checked against the pool's own node specs."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import NodeSpecsDep, SettingsDep
from app.api.errors import REJECTED_RESPONSE
from app.api.schemas.common import Message
from app.api.schemas.workflow_drafts import DraftRead, DraftRequest
from app.domain.contract_draft import draft_from_document

router = APIRouter(prefix="/workflows", tags=["workflows"])

# Node specs are fetched with a 5 s timeout per instance; a minute lets an instance restart.
RETRY_AFTER_S = 60
_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Message, "description": "No ComfyUI instance answered /object_info."}
}


@router.post(
    "/draft-contract",
    response_model=DraftRead,
    responses={**REJECTED_RESPONSE, **_UNAVAILABLE},
    summary="Draft a parameters contract for a workflow",
)
def draft_contract(
    request: DraftRequest, node_specs: NodeSpecsDep, settings: SettingsDep
) -> DraftRead | JSONResponse:
    """Types and bounds come from the pool's `/object_info`; a UI-format workflow is
    converted to the API format first. Review the draft before registering it."""
    object_info = node_specs.current()
    if object_info is None:
        urls = ", ".join(i.url for i in settings.instances) or "none configured"
        detail = f"no ComfyUI instance answered /object_info (instances: {urls})"
        return JSONResponse(
            {"detail": detail}, status_code=503, headers={"Retry-After": str(RETRY_AFTER_S)}
        )
    contract, graph = draft_from_document(request.graph, object_info)
    return DraftRead(contract=contract, graph=graph)
