"""Every exception the API turns into a response, and the one problem shape they share.

Domain rejections use FastAPI's own 422 body (`{"detail": [{loc, type, msg, input}]}`) so a
client parses payload errors and sweep errors alike. `HTTPException` is not used below this
package: services raise these classes and the handlers map them.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.api.limits import BodyTooLarge
from app.api.schemas.common import Message, ValidationProblems
from app.domain.problems import SweepRejected


class ApiError(Exception):
    status_code = 500
    description = "error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(ApiError):
    status_code = 404
    description = "Not found, or not visible to this key's team."


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


def responses(*errors: type[ApiError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the errors a route may raise."""
    return {e.status_code: {"model": Message, "description": e.description} for e in errors}


REJECTED_RESPONSE: dict[int | str, dict[str, Any]] = {
    422: {
        "model": ValidationProblems,
        "description": "The request breaks a rule; `loc` says where.",
    }
}


def _problem_body(exc: SweepRejected) -> dict[str, Any]:
    return {
        "detail": [
            {"loc": ["body", *p.loc], "type": p.type, "msg": p.msg, "input": p.input}
            for p in exc.problems
        ]
    }


async def _api_error(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, ApiError):
        raise exc
    headers = {"WWW-Authenticate": "Bearer"} if isinstance(exc, Unauthorized) else None
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=headers)


async def _rejected(_: Request, exc: Exception) -> JSONResponse:
    if not isinstance(exc, SweepRejected):
        raise exc
    return JSONResponse(_problem_body(exc), status_code=422)


async def _too_large(request: Request, exc: Exception) -> JSONResponse:
    return await _api_error(request, PayloadTooLarge("request body is above the size limit"))


async def _framework_error(request: Request, exc: Exception) -> Response:
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
