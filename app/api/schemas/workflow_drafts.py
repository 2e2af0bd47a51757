"""Shapes of the contract-drafting endpoint."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from app.api.schemas import examples as ex
from app.api.schemas.examples import example_of


class DraftRequest(BaseModel):
    model_config = example_of(ex.DRAFT_REQUEST)

    graph: dict[str, Any] = Field(
        description="A ComfyUI workflow: API format (Export (API)) or UI format (Save)."
    )


class DraftRead(BaseModel):
    model_config = example_of(ex.DRAFT_READ)

    contract: dict[str, Any] = Field(
        description="A parameters schema to review and save as params/<name>.schema.json."
    )
    graph: dict[str, Any] = Field(
        description="The workflow in API format, to save as workflows/<name>.api.json."
    )
