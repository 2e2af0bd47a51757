"""Response shapes of the workflows resource: what a caller may set on each workflow."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ParameterRead(BaseModel):
    name: str
    type: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    multiple_of: float | None = None
    enum: list[Any] | None = None
    description: str = ""


class WorkflowSummary(BaseModel):
    name: str
    title: str
    description: str


class WorkflowRead(WorkflowSummary):
    parameters: list[ParameterRead]
    json_schema: dict[str, Any]
