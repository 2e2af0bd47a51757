"""Times every API request into `comfy_sweep_http_request_duration_seconds`, labelled by the
route's path template (`/v1/sweeps/{sweep_id}`), never the raw path: one series per route,
not one per sweep id, and no id of a caller's ends up in a scrape.

A pure ASGI middleware, outermost, so the time includes waiting for admission. Routing
writes the matched route into the request's scope, which this reads once the app answered;
a path no route matched is labelled `unmatched`. A streamed response (an event stream) is
timed to its end.
"""

from __future__ import annotations

import re
import time

from fastapi import FastAPI
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.metrics.observed import REQUEST_DURATION

UNMATCHED = "unmatched"


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an exception before any answer is what the client sees as one

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            REQUEST_DURATION.labels(
                scope["method"], route_template(scope), status_class(status)
            ).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The matched route's full template. Routing leaves the route of the innermost router
    in the scope, whose template lacks the prefixes of the routers it was included in
    (`/sweeps/{sweep_id}` for `/v1/sweeps/{sweep_id}`): the prefix is the raw path up to
    where the route's own pattern matches, kept only if the result is a template the app
    documents (so a raw value never becomes a label); else the route's own template."""
    route = scope.get("route")
    if not isinstance(route, BaseRoute):
        return UNMATCHED
    own = getattr(route, "path_format", None)
    pattern = getattr(route, "path_regex", None)
    if not isinstance(own, str) or not isinstance(pattern, re.Pattern):
        return UNMATCHED
    path: str = scope.get("path", "")
    for cut in (i for i, char in enumerate(path) if char == "/"):
        if pattern.fullmatch(path[cut:]):
            full = path[:cut] + own
            return full if full == own or full in _documented(scope.get("app")) else own
    return own


def _documented(app: object) -> frozenset[str]:
    if not isinstance(app, FastAPI):
        return frozenset()
    known: frozenset[str] | None = getattr(app.state, "route_templates", None)
    if known is None:
        known = frozenset(app.openapi().get("paths", {}))
        app.state.route_templates = known
    return known


def status_class(status: int) -> str:
    return f"{status // 100}xx"
