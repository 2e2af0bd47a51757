"""Test-only ASGI factories for running the real API under uvicorn in its own process, with
one fault or one slow route added around it; production code knows nothing of them.

`uvicorn tests.support.api_process:dying_app --factory`: the process SIGKILLs itself where a
start message would be sent, which is after the sweep's transaction committed.
`uvicorn tests.support.api_process:slow_app --factory`: adds GET /test/slow?seconds=N.
"""

from __future__ import annotations

import asyncio
import os
import signal

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse

from app.main import create_app

SLOW_BODY = b"x" * 1_000_000


def dying_app() -> FastAPI:
    app = create_app()

    def die(*_: object, **__: object) -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    # send_after_commit calls this from the session's after_commit hook, before any send.
    setattr(app.state.celery, "send_task", die)  # noqa: B010 - an instance's method replaced
    return app


def slow_app() -> FastAPI:
    app = create_app()

    @app.get("/test/slow")
    async def slow(seconds: float) -> PlainTextResponse:
        await asyncio.sleep(seconds)
        return PlainTextResponse(SLOW_BODY)

    return app
