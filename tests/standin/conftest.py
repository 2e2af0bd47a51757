"""The stand-in as a real subprocess on a free port, talked to with plain httpx and websockets.

- `standin`: one process shared by a test module (fast model costs); tests keep their prompts
  apart with unique filename prefixes and sizes, so they do not depend on each other's cache.
- `start_standin`: a factory for tests that need their own process (CLI faults, `die`).
Each process is killed at the end of its scope; its log is shown if it fails to start.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 15.0
FAST_COSTS = ("--checkpoint-load-ms", "30", "--step-ms", "2")


@dataclass(frozen=True)
class Standin:
    process: subprocess.Popen[bytes]
    port: int
    output_dir: Path
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ws_url(self, client_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?clientId={client_id}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(standin: Standin) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if standin.process.poll() is not None:
            pytest.fail(f"stand-in exited with {standin.process.returncode}:\n{standin.log()}")
        try:
            if httpx.get(f"{standin.base_url}/system_stats", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"stand-in did not answer /system_stats in {STARTUP_SECONDS}s:\n{standin.log()}")


def _stop(standin: Standin) -> None:
    if standin.process.poll() is None:
        standin.process.kill()
    standin.process.wait(timeout=10)


def launch(root: Path, *args: str) -> Standin:
    """Start `python -m app.standin` with outputs under `root`; returns once it answers."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log_path = root / "standin.log"
    command = [
        sys.executable,
        "-m",
        "app.standin",
        "--port",
        str(port),
        "--output-dir",
        str(root / "output"),
        "--log-level",
        "info",
        *FAST_COSTS,
        *args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    standin = Standin(process, port, root / "output", log_path)
    try:
        _wait_until_up(standin)
    except BaseException:
        _stop(standin)
        raise
    return standin


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    instance = launch(tmp_path_factory.mktemp("standin"))
    yield instance
    _stop(instance)


@pytest.fixture
def start_standin(tmp_path: Path) -> Iterator[Callable[..., Standin]]:
    with ExitStack() as stack:
        counter = iter(range(1000))

        def start(*args: str) -> Standin:
            instance = launch(tmp_path / f"standin-{next(counter)}", *args)
            stack.callback(_stop, instance)
            return instance

        yield start


@pytest.fixture
def http(standin: Standin) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=standin.base_url, timeout=10.0) as client:
        yield client
