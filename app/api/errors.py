"""Every exception the API turns into a response, and the one problem shape they share.

Domain rejections use FastAPI's own 422 body (`{"detail": [{loc, type, msg, input}]}`) so a
client parses payload errors and sweep errors alike. `HTTPException` is not used below this
package: services raise these classes and the handlers map them.
"""

from __future__ import annotations

import logging
import math
from typing import Any
from uuid import uuid4

import sqlalchemy.exc
from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.limits import BodyTooLarge
from app.api.schemas.common import Message, ValidationProblems
from app.domain.problems import SweepRejected

log = logging.getLogger(__name__)

# How long a client should wait before retrying when the database is unreachable or busy.
DATABASE_RETRY_AFTER_S = 5


class ApiError(Exception):
    status_code = 500
    description = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ApiError):
    status_code = 404
    description = "Not found, or not visible to this key's team."


class Forbidden(ApiError):
    status_code = 403
    description = "The key may not do this (its role is too low)."


class Conflict(ApiError):
    status_code = 409
    description = "Clashes with an existing resource, named in the detail."


class NotReady(ApiError):
    status_code = 409
    description = "The resource exists but is not ready yet."


class Unauthorized(ApiError):
    status_code = 401
    description = "Missing, malformed, unknown or revoked API key."


class UnsupportedMediaType(ApiError):
    status_code = 415
    description = "The body is not in the media type the route takes."


class PayloadTooLarge(ApiError):
    status_code = 413
    description = "The request body is above the configured limit."


class QueueFull(ApiError):
    status_code = 429
    description = (
        "The team's queued runs are at its cap (`max_queued`); retry after `Retry-After` seconds."
    )

    def __init__(self, detail: str, retry_after_s: int) -> None:
        super().__init__(detail)
        self.retry_after_s = retry_after_s


class Unavailable(ApiError):
    status_code = 503
    description = (
        "The database or the broker is unreachable or busy; retry after `Retry-After` seconds."
    )
    retry_after_s = 5


def responses(*errors: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors a route may raise."""
    return {e.status_code: {"model": Message, "description": e.description} for e in errors}


REJECTED_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ValidationProblems,
        "description": "The request breaks a rule; `loc` says where.",
    }
}


def json_safe(value: Any) -> Any:
    """`value` with what strict JSON cannot carry spelt out: NaN and infinities (Python's
    parser reads `NaN`, `Infinity` and `1e400`) as the strings "NaN", "Infinity" and
    "-Infinity", lone surrogates (`"\\ud800"`) as their escape."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {json_safe(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _problem_body(exc: SweepRejected) -> dict[str, Any]:
    return {
        "detail": [
            {"loc": ["body", *p.loc], "type": p.type, "msg": p.msg, "input": json_safe(p.input)}
            for p in exc.problems
        ]
    }


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):
        raise exc
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    if isinstance(exc, Unavailable | QueueFull):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _rejected(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, SweepRejected):
        raise exc
    return JSONResponse(_problem_body(exc), status_code=422)


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, RequestValidationError):
        raise exc
    # FastAPI's own handler, except that the echoed input may be NaN or a lone surrogate.
    detail = json_safe(jsonable_encoder(exc.errors()))
    return JSONResponse({"detail": detail}, status_code=422)


async def _too_large(request: Request, exc: Exception) -> JSONResponse:
    return await _api_error(request, PayloadTooLarge("request body is above the size limit"))


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    # Connection refused, dropped, or no pooled connection free within DB_POOL_TIMEOUT_S:
    # the request may well succeed shortly, so say when to come back instead of a 500.
    log.warning("database_unavailable path=%s error=%s", request.url.path, type(exc).__name__)
    return JSONResponse(
        {"detail": "the database is unavailable or busy; retry shortly"},
        status_code=503,
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug: logged in full with an id the client can quote; the server error middleware
    # that calls this re-raises afterwards, so the server's own log shows it too.
    # This handler runs outside app.api.request_ids, which left the request's id here.
    request_id = getattr(request.state, "request_id", None) or uuid4().hex
    log.error(
        "unhandled_error method=%s path=%s",
        request.method,
        request.url.path,
        exc_info=exc,
        extra={"request_id": request_id},
    )
    body = {"detail": f"internal error; quote request id {request_id}"}
    return JSONResponse(body, status_code=500, headers={"X-Request-ID": request_id})


async def _framework_error(request: Request, exc: Exception) -> Response:
    # A chunked body that passes the limit surfaces as FastAPI's "error parsing the body".
    if isinstance(exc, StarletteHTTPException) and isinstance(exc.__cause__, BodyTooLarge):
        return await _too_large(request, exc.__cause__)
    # FastAPI answers a body it cannot decode (not UTF-8) with a bare 400; we answer every
    # unreadable body like malformed JSON, so clients see one documented shape.
    if isinstance(exc, StarletteHTTPException) and exc.status_code == 400:
        problem = {"loc": ["body"], "type": "json_invalid", "msg": "body is not UTF-8 JSON"}
        return JSONResponse({"detail": [{**problem, "input": None}]}, status_code=422)
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _framework_error)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_exception_handler(SweepRejected, _rejected)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    # OperationalError: refused, dropped or timed-out connections (and transient conflicts);
    # TimeoutError: the pool had no connection free in time.
    app.add_exception_handler(sqlalchemy.exc.OperationalError, _database_unavailable)
    app.add_exception_handler(sqlalchemy.exc.TimeoutError, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
