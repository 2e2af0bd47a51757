"""`GET /metrics`: Prometheus text format, the processes' observed metrics and the
database's gauges in one scrape (`app.metrics`).

Unauthenticated unless METRICS_REQUIRE_ADMIN is set: a scraper rarely holds an API key, and
nothing in it names a caller's resources (teams by name, instances by id, workflows by
name). Where even that is too much, set the setting, or keep the port off the network.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CollectorRegistry

from app.api.deps import require_admin
from app.api.errors import Forbidden, Unauthorized, responses
from app.metrics.exposition import CONTENT_TYPE, render
from app.settings import Settings


def router_for(settings: Settings) -> APIRouter:
    guarded = settings.metrics_require_admin
    router = APIRouter(
        tags=["health"],
        dependencies=[Depends(require_admin)] if guarded else [],
        responses=responses(Unauthorized, Forbidden) if guarded else None,
    )
    router.add_api_route(
        "/metrics",
        scrape,
        methods=["GET"],
        response_class=Response,
        summary="Prometheus metrics",
        responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Text format 0.0.4."}},
    )
    return router


def scrape(request: Request) -> Response:
    # Sync: the database gauges are read in this worker thread, in one short session.
    registry: CollectorRegistry = request.app.state.metrics_registry
    return Response(render(registry), media_type=CONTENT_TYPE)
