"""The API over real HTTP on a free loopback port, for tests (and a browser): an ASGI app
served by uvicorn in a background thread, or `python -m app.serve` in a process of its own
as production runs it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from app.settings import PROJECT_ROOT, Settings

START_TIMEOUT_S = 15.0
# Importing the app in a new process takes seconds on a busy machine.
PROCESS_START_TIMEOUT_S = 90.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Yields the base URL (127.0.0.1 only) while the app is being served."""
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", ws="none", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_S)


@contextmanager
def serve_process(settings: Settings, env: Mapping[str, str]) -> Iterator[str]:
    """`python -m app.serve` on `settings`' database, broker and queue, with `env` added
    (API_WORKERS, API_CONCURRENCY, ...): yields the base URL once /healthz answers."""
    port = free_port()
    environment = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "REDIS_URL": settings.redis_url or "",
        "QUEUE_NAME": settings.queue_name,
        "DATA_DIR": str(settings.data_dir),
        **env,
    }
    command = [sys.executable, "-m", "app.serve", "--port", str(port), "--log-level", "error"]
    process = subprocess.Popen(command, env=environment, cwd=PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        while True:
            assert process.poll() is None, "the API process exited"
            assert time.monotonic() < deadline, "the API process did not answer /healthz"
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base
    finally:
        process.terminate()
        process.wait(30)
