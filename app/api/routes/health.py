"""Liveness and readiness: the process answers (`/healthz`), and so do its database and
broker (`/readyz`).

`/healthz` never touches the pool or the database, so it answers even when every
connection is busy or the database is down; an orchestrator restarting the API for a slow
database would only make things worse.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import Engine

from app.api.deps import BrokerProbeDep, RegistryDep
from app.api.errors import Unavailable, responses
from app.api.schemas.examples import HEALTH, READINESS, example_of

router = APIRouter(tags=["health"])


class Health(BaseModel):
    model_config = example_of(HEALTH)

    status: str
    workflows: int


class Readiness(BaseModel):
    model_config = example_of(READINESS)

    status: str
    database: str
    broker: str


@router.get("/healthz", response_model=Health, summary="The API process answers")
async def healthz(registry: RegistryDep) -> Health:
    return Health(status="ok", workflows=len(registry.names()))


@router.get(
    "/readyz",
    response_model=Readiness,
    responses=responses(Unavailable),
    summary="The API, its database and its broker answer",
)
def readyz(request: Request, broker: BrokerProbeDep) -> Readiness:
    engine: Engine = request.app.state.engine
    # The pool's short timeout and the driver's connect timeout bound this; a failure is
    # answered as 503 by the database error handler.
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    if not broker.answers():
        raise Unavailable("the broker is unreachable")
    return Readiness(status="ok", database="ok", broker="ok")
