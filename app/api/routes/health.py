"""Liveness and readiness: the process answers (`/healthz`); its database, its broker and
at least one ComfyUI instance do (`/readyz`).

`/healthz` never touches the pool or the database, so it answers even when every
connection is busy or the database is down; an orchestrator restarting the API for a slow
database would only make things worse.

`/readyz` takes the connection the pool keeps for it (see `app.main`), asks the database
`SELECT 1` and how many configured instances the reconciler last found answering, and asks
the broker (cached for a second, `BrokerProbe`). It never probes an instance itself: a
scrape every few seconds from each load balancer must not become traffic to the GPUs. A
health older than `HEALTH_FRESH_PASSES` reconciler passes counts as unknown, since a
reconciler that stopped leaves its last answer behind.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy.exc
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.api.deps import BrokerProbeDep, RegistryDep, SettingsDep
from app.api.errors import Unavailable
from app.api.schemas.examples import HEALTH, NOT_READY, READINESS, example_of
from app.db.base import utc_now
from app.settings import Settings
from app.stores import farm_state

log = logging.getLogger(__name__)
router = APIRouter(tags=["health"])

HEALTH_FRESH_PASSES = 6  # reconciler passes after which a recorded health is too old
HEALTH_FRESH_MIN_S = 30.0
OK, DOWN, UNKNOWN = "ok", "unavailable", "unknown"


class Health(BaseModel):
    model_config = example_of(HEALTH)

    status: str
    workflows: int


class Readiness(BaseModel):
    model_config = example_of(READINESS, NOT_READY)

    status: str = Field(description="`ok`, or `unavailable` when any part below is not `ok`.")
    database: str = Field(description="`ok` or `unavailable`.")
    broker: str = Field(description="`ok` or `unavailable`.")
    instances: str = Field(
        description="`ok` when the reconciler recently found a configured instance answering; "
        "`unavailable` when none; `unknown` when the database could not say."
    )
    healthy_instances: int | None = Field(default=None, examples=[2])
    detail: str | None = Field(default=None, examples=["not ready: database"])


@router.get("/healthz", response_model=Health, summary="The API process answers")
async def healthz(registry: RegistryDep) -> Health:
    return Health(status="ok", workflows=len(registry.names()))


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": Unavailable.description}},
    summary="The API, its database, its broker and an instance answer",
)
def readyz(request: Request, broker: BrokerProbeDep, settings: SettingsDep) -> JSONResponse:
    healthy = _healthy_instances(request.app.state.engine, settings)
    parts = {
        "database": DOWN if healthy is None else OK,
        "broker": OK if broker.answers() else DOWN,
        "instances": UNKNOWN if healthy is None else (OK if healthy else DOWN),
    }
    failed = [name for name, state in parts.items() if state != OK]
    readiness = Readiness(
        status=DOWN if failed else OK,
        healthy_instances=healthy,
        detail=f"not ready: {', '.join(failed)}" if failed else None,
        **parts,
    )
    body = readiness.model_dump(mode="json")
    if not failed:
        return JSONResponse(body)
    headers = {"Retry-After": str(Unavailable.retry_after_s)}
    return JSONResponse(body, status_code=503, headers=headers)


def _healthy_instances(engine: Engine, settings: Settings) -> int | None:
    """Configured instances recently found answering; None if the database did not answer.
    The pool's short timeout and the driver's connect timeout bound the wait."""
    fresh_s = max(HEALTH_FRESH_MIN_S, HEALTH_FRESH_PASSES * settings.reconcile_interval_s)
    since = utc_now() - timedelta(seconds=fresh_s)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
            with Session(bind=connection) as session:
                urls = [config.url for config in settings.instances]
                return farm_state.healthy_instances(session, urls, since)
    except sqlalchemy.exc.SQLAlchemyError as error:
        log.warning("readyz_database_unreachable error=%s", type(error).__name__)
        return None
