"""The API as its own uvicorn process, stopped hard and gently: killed between a sweep's
commit and its start message, the sweep still runs; stopped by SIGTERM, it finishes the
requests in flight and refuses new connections."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import FAST_TIMINGS, Process, System, wait_for_sweep
from tests.support.api_process import SLOW_BODY
from tests.support.serving import free_port
from tests.support.standin_process import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SystemFactory = Callable[..., System]
ApiFor = Callable[[System], httpx.Client]


def uvicorn_command(factory: str, port: int, *options: str) -> tuple[str, ...]:
    return ("uvicorn", f"tests.support.api_process:{factory}", "--factory", "--host", "127.0.0.1",
            "--port", str(port), *options)  # fmt: skip


def wait_until_serving(base_url: str, process: Process) -> None:
    # Importing the app alone takes seconds on a loaded 2-core machine.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.popen.poll() is None, process.log()
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the API did not start:\n{process.log()}")


def test_an_api_killed_between_commit_and_start_message_still_gets_its_sweep_run(
    system_factory: SystemFactory, api_for: ApiFor
) -> None:
    system = system_factory()
    reader = api_for(system)  # an API of the same system, to read what the dead one wrote
    port = free_port()
    dying = system.start("api", *uvicorn_command("dying_app", port))
    base_url = f"http://127.0.0.1:{port}"
    wait_until_serving(base_url, dying)
    body = {"workflow": "demo-noise", "axes": [{"param": "blur_radius", "values": [1, 3, 5]}]}

    with pytest.raises(httpx.TransportError):  # no answer: the process died mid-request
        httpx.post(f"{base_url}/v1/sweeps", json=body, headers=reader.headers, timeout=30)
    killed_at = time.monotonic()

    assert dying.popen.wait(timeout=10) == -signal.SIGKILL
    listed = reader.get("/v1/sweeps").json()["items"]
    assert len(listed) == 1, listed  # committed before the process died
    sweep_id = listed[0]["id"]
    sweep = wait_for_sweep(reader, sweep_id, system, timeout=60)
    took = time.monotonic() - killed_at
    assert sweep["status"] == "succeeded", system.logs()
    assert f"sweep_not_started sweep={sweep_id}" in system.processes["reconciler"].log()
    # Re-sent once it has been pending for STALL_S, at the next reconciler pass.
    assert took < float(FAST_TIMINGS["STALL_S"]) + 10, took


def test_sigterm_lets_requests_in_flight_finish_and_refuses_new_connections(
    system_database: str, tmp_path: Path
) -> None:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": system_database, "COMFY_INSTANCES": ""}
    log_path = tmp_path / "api.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", *uvicorn_command("slow_app", port,
                                                   "--timeout-graceful-shutdown", "10")],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    api = Process("api", popen, log_path)
    try:
        wait_until_serving(base_url, api)
        with ThreadPoolExecutor(1) as pool:
            in_flight = pool.submit(httpx.get, f"{base_url}/test/slow?seconds=3", timeout=30)
            time.sleep(1)  # the request is being served
            popen.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.ConnectError):
                httpx.get(f"{base_url}/healthz", timeout=2)
            answer = in_flight.result(timeout=20)
        assert answer.status_code == 200, api.log()
        assert answer.content == SLOW_BODY
        # uvicorn re-raises the signal it stopped on once it has shut down cleanly.
        assert popen.wait(timeout=15) in (0, -signal.SIGTERM), api.log()
        assert "Finished server process" in api.log()
    finally:
        api.stop()
