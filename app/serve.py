"""`python -m app.serve`: the API under uvicorn, as the image, compose and the benchmarks run it.

One entry point, so uvicorn's own overload guards come from Settings wherever the API is
served: `API_LIMIT_CONCURRENCY` (past that many open connections or requests in progress,
uvicorn answers 503 itself, before the app or its middleware runs), `API_BACKLOG` (the
kernel's queue of connections not yet accepted) and `API_WORKERS` (processes, each with its
own app, admission line and database pool). `make run` serves in-process and takes the first
two from the same function (`server_options`).

    python -m app.serve --host 0.0.0.0 --port 8000
"""

from __future__ import annotations

import argparse
from typing import Any

import uvicorn

from app.logs.setup import logging_config
from app.settings import Settings

APP_FACTORY = "app.main:create_app"
GRACEFUL_SHUTDOWN_S = 20  # requests in flight at SIGTERM may finish for this long


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options that guard one API process against overload."""
    return {"limit_concurrency": settings.api_limit_concurrency, "backlog": settings.api_backlog}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.serve", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="trust X-Forwarded-* from FORWARDED_ALLOW_IPS (uvicorn's default: 127.0.0.1)",
    )
    parser.add_argument(
        "--log-level",
        default=None,
        help="uvicorn's own loggers (access, error); default: LOG_LEVEL, like every other",
    )
    parser.add_argument("--no-access-log", action="store_true")
    return parser.parse_args(argv)


def uvicorn_kwargs(settings: Settings, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "factory": True,
        "host": args.host,
        "port": args.port,
        "proxy_headers": args.proxy_headers,
        "log_level": args.log_level,
        "access_log": not args.no_access_log,
        # Our setup, applied by uvicorn in each of its processes (app.logs.setup).
        "log_config": logging_config(settings),
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_S,
        "workers": settings.api_workers,
        **server_options(settings),
    }


def main(argv: list[str] | None = None) -> None:
    # The app factory reads Settings again in each process; this read validates them first,
    # so a bad setting stops here with its name rather than in every worker.
    uvicorn.run(APP_FACTORY, **uvicorn_kwargs(Settings(), parse_args(argv)))


if __name__ == "__main__":
    main()
