"""Makes every state-changing `/v1` request idempotent under an `Idempotency-Key` header.

A pure ASGI middleware, so a route added later is covered without a line of its own: for a
POST, PUT, PATCH or DELETE under `/v1` that carries the header, it resolves the caller's team
with the key lookup auth uses, claims the key (`app.services.idempotency`), runs the route
with its answer held back, records that answer, and only then sends it, so a client that
retries the moment it has the answer finds it recorded. A repeat gets the recorded answer
with `Idempotent-Replayed: true` and the route does not run. GET and HEAD never look at it.
A request whose caller is unknown runs as usual, so auth answers it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy.exc
from fastapi import FastAPI
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.orm import Session
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import DATABASE_RETRY_AFTER_S, json_safe
from app.api.limits import BodyTooLarge
from app.domain.idempotency import HEADER, MAX_KEY_LENGTH, answer_is_kept, request_fingerprint
from app.services import idempotency
from app.services.idempotency import Claim, Claimed, Refused, Replay

log = logging.getLogger(__name__)

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED_HEADER = (b"idempotent-replayed", b"true")
_HEADER_NAME = HEADER.lower().encode()
_DATABASE_ERRORS = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.TimeoutError)


def document_idempotency_key(app: FastAPI) -> None:
    """Lists the header on every operation the middleware covers in the OpenAPI document,
    computed from the routes when the document is first built, as the middleware is."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            for path, operations in schema.get("paths", {}).items():
                for method, operation in operations.items():
                    if path.startswith("/v1/") and method.upper() in STATE_CHANGING:
                        operation.setdefault("parameters", []).append(IDEMPOTENCY_PARAMETER)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


IDEMPOTENCY_PARAMETER: dict[str, Any] = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": (
        "Makes a retry safe: a repeat of this request with the same key within 24 hours gets "
        "the first answer again (`Idempotent-Replayed: true`) and does nothing. Another "
        "request under the key is a 422; while the first is still served, 409 with "
        "`Retry-After`. Keys are per team."
    ),
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
}


class IdempotentRequests:
    def __init__(
        self, app: ASGIApp, session_factory: Callable[[], Session], auth_enabled: bool
    ) -> None:
        self.app = app
        self.session_factory = session_factory
        self.auth_enabled = auth_enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = _idempotency_key(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        try:
            body = await _whole_body(receive)
        except BodyTooLarge:
            await self.app(scope, _raising_too_large, send)  # answered as any oversize body
            return
        if body is None:
            return  # the client hung up while sending: no one reads an answer
        receive = _replaying(body, receive)
        fingerprint = request_fingerprint(scope["method"], _target(scope), body)
        try:
            claim = await anyio.to_thread.run_sync(self._claim, _bearer(scope), key, fingerprint)
        except _DATABASE_ERRORS as failure:
            log.warning("idempotency_unavailable error=%s", type(failure).__name__)
            await _send_database_unavailable(send)
            return
        if claim is None:
            await self.app(scope, receive, send)
        elif isinstance(claim, Replay):
            await _send_replay(send, claim)
        elif isinstance(claim, Refused):
            await _send_refusal(send, claim)
        else:
            await self._run_once(scope, receive, send, claim)

    def _claim(self, token: str | None, key: str, fingerprint: str) -> Claim | None:
        with self.session_factory() as session:
            team_id = idempotency.team_of(session, self.auth_enabled, token)
            if team_id is None:
                return None
            return idempotency.claim_key(session, team_id, key, fingerprint)

    async def _run_once(self, scope: Scope, receive: Receive, send: Send, claim: Claimed) -> None:
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        try:
            await self.app(scope, receive, hold)
        except BaseException:
            # A bug or a cancelled request: the key must not stay taken by an answer never sent.
            with anyio.CancelScope(shield=True):
                await self._settle(claim, None)
            raise
        with anyio.CancelScope(shield=True):
            await self._settle(claim, held)
        for message in held:
            await send(message)

    async def _settle(self, claim: Claimed, held: list[Message] | None) -> None:
        answer = None if held is None else _answer(held)
        keep = answer is not None and answer_is_kept(answer[0])

        def settle() -> None:
            with self.session_factory() as session:
                if answer is not None and keep:
                    idempotency.record_answer(session, claim.claim_id, *answer)
                else:
                    idempotency.release(session, claim.claim_id)

        try:
            await anyio.to_thread.run_sync(settle)
        except Exception:
            # The answer still goes out; the claim lapses after ABANDONED_AFTER.
            log.exception("idempotency_settle_failed claim=%s", claim.claim_id)


def _idempotency_key(scope: Scope) -> str | None:
    if scope["type"] != "http" or scope["method"] not in STATE_CHANGING:
        return None
    if not scope["path"].startswith("/v1/"):
        return None
    for name, value in scope["headers"]:
        if name == _HEADER_NAME:
            return str(value.decode("latin-1"))
    return None


def _bearer(scope: Scope) -> str | None:
    """The token of `Authorization: Bearer <token>`, parsed as the auth dependency parses it."""
    header = dict(scope["headers"]).get(b"authorization")
    if header is None:
        return None
    scheme, token = get_authorization_scheme_param(header.decode("latin-1"))
    return token if scheme.lower() == "bearer" and token else None


def _target(scope: Scope) -> str:
    query = scope.get("query_string", b"").decode("latin-1")
    return f"{scope['path']}?{query}" if query else str(scope["path"])


async def _whole_body(receive: Receive) -> bytes | None:
    """The request body, read to its end (the fingerprint needs all of it); None if the
    client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the client's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _raising_too_large() -> Message:
    raise BodyTooLarge


def _answer(held: list[Message]) -> tuple[int, list[tuple[str, str]], bytes] | None:
    start = next((m for m in held if m["type"] == "http.response.start"), None)
    if start is None:
        return None
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in start.get("headers", [])]
    body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
    return int(start["status"]), headers, body


async def _send_replay(send: Send, replay: Replay) -> None:
    headers = [(n.encode("latin-1"), v.encode("latin-1")) for n, v in replay.headers]
    await _send(send, replay.status_code, [*headers, REPLAYED_HEADER], replay.body)


async def _send_refusal(send: Send, refused: Refused) -> None:
    p = refused.problem
    problem = {"loc": list(p.loc), "type": p.type, "msg": p.msg, "input": json_safe(p.input)}
    headers = []
    if refused.status_code == 409:
        headers.append((b"retry-after", str(idempotency.IN_USE_RETRY_AFTER_S).encode()))
    await _send_json(send, refused.status_code, {"detail": [problem]}, headers)


async def _send_database_unavailable(send: Send) -> None:
    body = {"detail": "the database is unavailable or busy; retry shortly"}
    retry = [(b"retry-after", str(DATABASE_RETRY_AFTER_S).encode())]
    await _send_json(send, 503, body, retry)


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]]
) -> None:
    encoded = json.dumps(body, ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), *headers]
    headers.append((b"content-length", str(len(encoded)).encode()))
    await _send(send, status, headers, encoded)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
