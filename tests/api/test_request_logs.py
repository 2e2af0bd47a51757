"""Every request has an id: the caller's `X-Request-ID` when sane, else a new one. The
response echoes it, and the request's log lines (uvicorn's access line included) carry it
with the caller's team, in JSON, with no key in them."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.request_ids import HEADER
from app.logs.formatting import JsonFormatter
from app.services import keys
from app.settings import PROJECT_ROOT, Settings
from tests.api.conftest import mint_key
from tests.support.serving import PROCESS_START_TIMEOUT_S, START_TIMEOUT_S, free_port

ACCESS_LOGGER = "uvicorn.access"


def test_a_request_without_an_id_gets_a_new_one_back(client: TestClient) -> None:
    first = client.get("/v1/sweeps").headers[HEADER]
    second = client.get("/v1/sweeps").headers[HEADER]

    assert len(first) == 32
    assert int(first, 16) >= 0  # hex, the shape of a W3C trace id
    assert first != second


@pytest.mark.parametrize("offered", ["farm-job-4711/frame 12", "x" * 128])
def test_a_sane_incoming_id_is_kept(client: TestClient, offered: str) -> None:
    assert client.get("/v1/sweeps", headers={HEADER: offered}).headers[HEADER] == offered


@pytest.mark.parametrize("offered", ["x" * 129, "tab\there", "   ", "caf\u00e9"])
def test_an_id_too_long_or_not_printable_is_replaced(client: TestClient, offered: str) -> None:
    headers = {HEADER.encode(): offered.encode("latin-1")}
    echoed = client.get("/v1/sweeps", headers=headers).headers[HEADER]

    assert echoed != offered.strip()
    assert len(echoed) == 32


def test_a_refused_request_echoes_its_id_too(app: FastAPI) -> None:
    with TestClient(app) as anonymous:
        response = anonymous.get("/v1/sweeps", headers={HEADER: "no-key-1"})

    assert response.status_code == 401
    assert response.headers[HEADER] == "no-key-1"


class JsonLines(logging.Handler):
    """Formats each record when it is logged, in the context it was logged in, as a stream
    handler does."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.stream = io.StringIO()

    def emit(self, record: logging.LogRecord) -> None:
        self.stream.write(self.format(record) + "\n")

    def objects(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]


@pytest.fixture
def access_lines(app: FastAPI) -> Iterator[tuple[str, JsonLines]]:
    """The app under uvicorn with its access log on, its lines captured as JSON."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=free_port(), log_config=None, log_level="info", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    lines = JsonLines()
    logging.getLogger(ACCESS_LOGGER).addHandler(lines)
    try:
        yield f"http://127.0.0.1:{config.port}", lines
    finally:
        logging.getLogger(ACCESS_LOGGER).removeHandler(lines)
        server.should_exit = True
        thread.join(START_TIMEOUT_S)


def test_the_access_line_carries_the_request_id_and_team_and_no_key(
    app: FastAPI, access_lines: tuple[str, JsonLines]
) -> None:
    base_url, lines = access_lines
    key = mint_key(app, "logged-team")
    with app.state.session_factory() as session:
        team_id = keys.team_for_key(session, key)
    auth = {"Authorization": f"Bearer {key}"}

    # A careless client that also puts its key in the URL.
    given = httpx.get(f"{base_url}/v1/sweeps?api_key={key}", headers={**auth, HEADER: "job-7"})
    made = httpx.get(f"{base_url}/v1/sweeps", headers=auth)

    assert (given.status_code, made.status_code) == (200, 200)
    by_id = {line["request_id"]: line for line in lines.objects()}
    assert by_id["job-7"]["team"] == str(team_id)
    assert by_id["job-7"]["status"] == 200
    assert by_id["job-7"]["path"] == "/v1/sweeps?api_key=csk_[redacted]"
    assert by_id[made.headers[HEADER]]["team"] == str(team_id)
    assert key not in lines.stream.getvalue()


def test_a_request_refused_before_auth_is_logged_without_a_team(
    access_lines: tuple[str, JsonLines],
) -> None:
    base_url, lines = access_lines

    response = httpx.get(f"{base_url}/v1/sweeps", headers={HEADER: "anon-1"})

    assert response.status_code == 401
    [line] = [line for line in lines.objects() if line["request_id"] == "anon-1"]
    assert line["status"] == 401
    assert "team" not in line


@pytest.fixture
def serve_log(settings: Settings, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """`python -m app.serve` as the image runs it (stderr not a terminal), its log a file."""
    port, log_path = free_port(), tmp_path / "api.log"
    env = {k: v for k, v in os.environ.items() if k not in ("LOG_FORMAT", "LOG_LEVEL")}
    env.update(
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url or "",
        QUEUE_NAME=settings.queue_name,
        DATA_DIR=str(settings.data_dir),
    )
    command = [sys.executable, "-m", "app.serve", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + PROCESS_START_TIMEOUT_S
        while True:
            assert process.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield base, log_path
    finally:
        process.terminate()
        process.wait(30)


def test_the_served_api_writes_every_line_as_json(
    app: FastAPI, serve_log: tuple[str, Path]
) -> None:
    base_url, log_path = serve_log
    key = mint_key(app, "served-team")

    httpx.get(f"{base_url}/v1/sweeps", headers={"Authorization": f"Bearer {key}", HEADER: "s-1"})
    time.sleep(0.5)  # the access line is written as the response starts

    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert any(line["logger"] == "uvicorn.error" for line in lines)  # "Started server process"
    [access] = [line for line in lines if line.get("request_id") == "s-1"]
    assert access["logger"] == "uvicorn.access"
    assert access["team"]
    assert key not in log_path.read_text()
