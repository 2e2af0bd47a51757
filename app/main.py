"""Builds the FastAPI application from one Settings object: stores, registry, routes, errors."""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI

from app.api.admission import Admission
from app.api.broker_probe import BrokerProbe
from app.api.callers import CallerCache
from app.api.deps import require_team
from app.api.errors import Unauthorized, install_error_handlers, responses
from app.api.idempotency import IdempotentRequests, document_idempotency_key
from app.api.limits import BodySizeLimit
from app.api.log_redaction import install_token_redaction
from app.api.openapi_doc import document_standard_responses, operation_id
from app.api.request_ids import RequestIds
from app.api.request_metrics import RequestMetrics
from app.api.routes import (
    browse,
    events,
    grids,
    health,
    instances,
    metrics,
    outputs,
    replays,
    reruns,
    sweeps,
    teams,
    webhooks,
    wildcards,
    workflow_drafts,
    workflows,
)
from app.comfy.node_specs import NodeSpecs
from app.db.engine import PoolLimits, make_engine, make_session_factory
from app.metrics.exposition import scrape_registry
from app.metrics.farm_collector import FarmCollector
from app.queue import make_celery
from app.registry import load_registry
from app.services import event_streams
from app.services.workflows import ShippedWorkflows
from app.settings import Settings
from app.stores import webhook_outbox
from app.telemetry.tracing import API_SERVICE, api_telemetry, start_tracing

log = logging.getLogger(__name__)
EVENT_STREAM_SUFFIX = "/events"  # GET /v1/events, GET /v1/sweeps/{id}/events

DESCRIPTION = """Turns ad-hoc image generation into systematic experiments: submit a sweep over
a registered ComfyUI workflow, follow its runs, compare the results.

Every `/v1` route needs `Authorization: Bearer <key>`; create keys with `comfy-sweep keys create`.

Every POST, PUT, PATCH or DELETE under `/v1` takes an `Idempotency-Key` header: a repeat of the
request with the same key within 24 hours gets the first answer again, and nothing is done twice.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # Off unless OTEL_* asks for traces; before the first request, which FastAPI then traces.
    start_tracing(API_SERVICE)
    app = FastAPI(
        title="comfy-sweep",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=_frozen_heap,
        generate_unique_id_function=operation_id,
        telemetry=api_telemetry(),
    )
    app.state.settings = settings
    # Loaded eagerly: a broken workflow or contract stops start-up, naming the file.
    app.state.registry = load_registry(settings.workflows_dir, settings.params_dir)
    # Synced into the database as global workflows on first use, not here: building the app
    # needs no database (the OpenAPI document is built without one).
    app.state.shipped = ShippedWorkflows(app.state.registry)
    # As many connections as requests admitted at once (see app.api.admission), plus one
    # for /readyz, which is not queued, and one for each event stream poll that may run at
    # once (app.services.event_streams).
    connections = settings.api_concurrency + 1 + event_streams.POLLING_THREADS
    pool = PoolLimits(size=connections, timeout_s=settings.db_pool_timeout_s)
    engine = make_engine(settings.database_url, pool)
    app.state.engine = engine
    app.state.session_factory = make_session_factory(engine)
    app.state.celery = make_celery(settings)
    app.state.broker_probe = BrokerProbe(app.state.celery)
    app.state.callers = CallerCache()
    app.state.node_specs = NodeSpecs(settings.instances, settings.object_info_ttl_s)
    app.state.metrics_registry = scrape_registry(
        settings.prometheus_multiproc_dir,
        [
            FarmCollector(
                app.state.session_factory,
                settings,
                webhook_lag=webhook_outbox.oldest_due_age_s,
            )
        ],
    )
    if not settings.auth_enabled:
        log.warning("auth_disabled every caller acts as team=local; never do this in production")
    install_error_handlers(app)
    install_token_redaction()
    # Inside the size limit, so the body it reads to fingerprint a request is bounded.
    app.add_middleware(
        IdempotentRequests,
        session_factory=app.state.session_factory,
        auth_enabled=settings.auth_enabled,
    )
    document_idempotency_key(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    # Outermost of ours: a refused request costs nothing, not even reading its body.
    app.add_middleware(
        Admission,
        capacity=settings.api_concurrency,
        wait_s=settings.api_queue_timeout_s,
        exempt=frozenset({"/healthz", "/readyz"}),
        # Event streams stay open for as long as a client follows them, holding no thread and
        # no connection between polls: admitted, each would hold a place in line for good.
        exempt_suffixes=(EVENT_STREAM_SUFFIX,),
    )
    app.add_middleware(RequestMetrics)  # outermost: the time includes admission's wait
    # Outermost: a refused request's lines and answer carry its id too, as do the metrics'.
    app.add_middleware(RequestIds)
    app.include_router(health.router)
    app.include_router(metrics.router_for(settings))
    app.include_router(_v1_router())
    # Signed links carry their own authority (a browser cannot send the bearer header).
    app.include_router(browse.signed_router)
    # After the idempotency header is documented: it makes an operation one that takes input.
    document_standard_responses(app)
    return app


@asynccontextmanager
async def _frozen_heap(app: FastAPI) -> AsyncIterator[None]:
    """While serving, what start-up built (modules, routes, the registry: ~230,000 objects)
    is out of the cyclic collector's sight (`gc.freeze`). A 10,000-run submission allocates
    enough to set off full collections, and each walked all of it: the API spent 125-155 ms
    of CPU on such a submission, 85 ms with the heap frozen. Released at shutdown, so an
    app stopped inside a longer-lived process (tests) can still be collected."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _v1_router() -> APIRouter:
    # Auth lives on the router group, so no endpoint can forget it.
    v1 = APIRouter(
        prefix="/v1", dependencies=[Depends(require_team)], responses=responses(Unauthorized)
    )
    v1.include_router(sweeps.router)
    v1.include_router(reruns.router)
    v1.include_router(replays.router)
    v1.include_router(outputs.router)
    v1.include_router(browse.router)
    v1.include_router(grids.router)
    v1.include_router(workflow_drafts.router)
    v1.include_router(workflows.router)
    v1.include_router(wildcards.router)
    v1.include_router(instances.router)
    v1.include_router(teams.router)
    v1.include_router(webhooks.router)
    v1.include_router(events.router)
    return v1
