"""Gives every request an id and opens its log scope (app.logs.context).

A caller's `X-Request-ID` is kept when it is sane (printable ASCII, at most 128 characters),
so one id follows a request from a proxy or a pipeline tool into our lines; otherwise one is
made. Either way the response carries it back in `X-Request-ID`, and every line logged while
the request is served, uvicorn's access line included, carries it as `request_id`. A route's
dependencies add the team once the caller is known (app.api.deps).

A made id is 32 hex digits, the shape of a W3C trace id, so a tracing layer added later can
use the trace's id here and its lines and spans will match.
"""

from __future__ import annotations

import re
from uuid import uuid4

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.logs import context

HEADER = "X-Request-ID"
_HEADER_KEY = HEADER.lower().encode()
_SANE = re.compile(r"[\x20-\x7e]{1,128}")


def request_id_of(scope: Scope) -> str:
    """The caller's id if sane, else a new one."""
    for name, value in scope["headers"]:
        if name == _HEADER_KEY:
            offered: str = value.decode("latin-1").strip()
            if _SANE.fullmatch(offered):
                return offered
    return uuid4().hex


class RequestIds:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        # For the error handler, which runs outside this middleware (and its scope).
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                MutableHeaders(scope=message)[HEADER] = request_id
            await send(message)

        with context.scope(request_id=request_id):
            await self.app(scope, receive, send_with_id)
