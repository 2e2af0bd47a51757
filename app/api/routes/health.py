"""Liveness and readiness: the process answers and its database does too."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import text

from app.api.deps import RegistryDep, SessionDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str
    workflows: int


@router.get("/healthz", response_model=Health, summary="Health of the API and its database")
def healthz(session: SessionDep, registry: RegistryDep) -> Health:
    session.execute(text("SELECT 1"))
    return Health(status="ok", database="ok", workflows=len(registry.names()))
