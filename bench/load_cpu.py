"""The API's own CPU per polled read, in-process: the app's ASGI callable driven directly on
a scratch Postgres database, no network, no uvicorn, no load generator sharing the cores.

`bench.load` measures the served API, but on a shared 2-core machine its numbers move with
whatever else runs; this counts `time.process_time()` (every thread of this process: the
event loop, the worker threads, psycopg) over N requests sent `--concurrency` at a time, so
two trees can be compared A/B in minutes. What it leaves out is uvicorn's HTTP parsing and
the socket work, the same for every tree.

    python -m bench.load_cpu [--requests 3000] [--concurrency 8] [--runs 500]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any
from uuid import uuid4

from fastapi import FastAPI

from app.db.migrate import upgrade_to_head
from app.main import create_app
from app.services import keys
from app.settings import Settings
from bench.submit import REDIS_URL, scratch_database

ROUTES = ("status", "runs page", "workflows", "healthz")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load_cpu", description=__doc__)
    parser.add_argument("--requests", type=int, default=3000, help="per route and round")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--runs", type=int, default=500, help="runs in the sweep read")
    parser.add_argument("--rounds", type=int, default=3, help="the median round is reported")
    parser.add_argument("--routes", nargs="*", default=list(ROUTES), choices=ROUTES)
    return parser.parse_args()


async def call(app: FastAPI, method: str, path: str, token: str, body: bytes = b"") -> bytes:
    """One request through the whole app, as uvicorn would hand it over; the response body."""
    raw_path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": raw_path,
        "raw_path": raw_path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    sent = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # a client that stays connected
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    if status >= 400:
        raise SystemExit(f"{method} {path}: {status} {b''.join(chunks)[:300]!r}")
    return b"".join(chunks)


async def measure(
    request: Callable[[], Awaitable[bytes]], count: int, concurrency: int
) -> tuple[float, float]:
    """(CPU ms, wall ms) per request over `count` requests, `concurrency` in flight."""
    remaining = count

    async def client() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await request()

    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return 1000 * cpu / count, 1000 * wall / count


async def run(args: argparse.Namespace, database_url: str, data_dir: Path) -> None:
    settings = Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=f"comfy-sweep-load-cpu-{uuid4().hex[:8]}",
        data_dir=data_dir,
    )
    app = create_app(settings)
    with app.state.session_factory() as session:
        token = keys.create_key(session, "load-cpu").plaintext
    async with app.router.lifespan_context(app):
        sweep = await call(
            app,
            "POST",
            "/v1/sweeps",
            token,
            (b'{"workflow":"demo-noise","axes":[{"param":"seed","values":"1-%d"}]}' % args.runs),
        )
        sweep_id = json.loads(sweep)["id"]
        paths = {
            "status": f"/v1/sweeps/{sweep_id}",
            "runs page": f"/v1/sweeps/{sweep_id}/runs?limit=50&offset=100",
            "workflows": "/v1/workflows",
            "healthz": "/healthz",
        }
        for path in paths.values():
            await call(app, "GET", path, token)  # first-use costs kept out
        print(
            f"load_cpu: in-process ASGI on Postgres, {args.requests} requests per route and "
            f"round, {args.concurrency} in flight, median of {args.rounds} rounds, "
            f"a {args.runs}-run sweep"
        )
        for route in args.routes:
            path = paths[route]
            rounds = [
                await measure(
                    lambda path=path: call(app, "GET", path, token),  # type: ignore[misc]
                    args.requests,
                    args.concurrency,
                )
                for _ in range(args.rounds)
            ]
            cpu = statistics.median(c for c, _ in rounds)
            wall = statistics.median(w for _, w in rounds)
            spread = ", ".join(f"{c:.2f}" for c, _ in rounds)
            print(f"  {route:10} CPU {cpu:.2f} ms/request (rounds {spread}), wall {wall:.2f} ms")
    app.state.engine.dispose()


def main() -> None:
    args = parse_args()
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    with (
        tempfile.TemporaryDirectory(prefix="bench-load-cpu-") as workdir,
        scratch_database() as database_url,
    ):
        upgrade_to_head(database_url)
        asyncio.run(run(args, database_url, Path(workdir)))


if __name__ == "__main__":
    main()
