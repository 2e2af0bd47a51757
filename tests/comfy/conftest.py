"""Fixtures for the ComfyUI client tests.

- `anyio_backend`: async tests run on asyncio (the anyio pytest plugin drives them).
- `standin`: the ComfyUI stand-in (`python -m app.standin`) as a real subprocess on a free
  port, shared by a test module; tests keep apart with unique prompt ids and filename prefixes.
- `start_standin`: a factory for tests that need their own process, or a restart on one port.
- `demo_graph`: workflows/demo-noise.api.json with a unique `filename_prefix`.
The launch pattern is copied from tests/standin/conftest.py so the two suites stay independent.
"""

from __future__ import annotations

import copy
import json
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_WORKFLOW = REPO_ROOT / "workflows" / "demo-noise.api.json"
STARTUP_SECONDS = 15.0
FAST_COSTS = ("--checkpoint-load-ms", "30", "--step-ms", "2")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@dataclass(frozen=True)
class Standin:
    process: subprocess.Popen[bytes]
    port: int
    root: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return (self.root / "standin.log").read_text(errors="replace")

    def set_faults(self, spec: str) -> None:
        """Not ComfyUI: the stand-in's runtime fault switch, e.g. "hang:+1" (next prompt)."""
        answer = httpx.post(f"{self.base_url}/standin/faults", json={"spec": spec}, timeout=5.0)
        answer.raise_for_status()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)


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


def launch(root: Path, *args: str, port: int | None = None) -> Standin:
    """Start the stand-in with outputs under `root`; returns once it answers."""
    root.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    command = [
        *(sys.executable, "-m", "app.standin", "--port", str(port)),
        *("--output-dir", str(root / "output"), "--log-level", "info"),
        *FAST_COSTS,
        *args,
    ]
    with (root / "standin.log").open("ab") as log:
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    standin = Standin(process, port, root)
    try:
        _wait_until_up(standin)
    except BaseException:
        standin.stop()
        raise
    return standin


@pytest.fixture(scope="module")
def standin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standin]:
    instance = launch(tmp_path_factory.mktemp("standin"))
    yield instance
    instance.stop()


@pytest.fixture
def start_standin(tmp_path: Path) -> Iterator[Callable[..., Standin]]:
    with ExitStack() as stack:

        def start(*args: str, port: int | None = None) -> Standin:
            instance = launch(tmp_path / "standin", *args, port=port)
            stack.callback(instance.stop)
            return instance

        yield start


@pytest.fixture
def demo_graph() -> dict[str, Any]:
    """The demo workflow saving under a prefix no other test uses."""
    graph: dict[str, Any] = json.loads(DEMO_WORKFLOW.read_text())
    graph = copy.deepcopy(graph)
    graph["4"]["inputs"]["filename_prefix"] = f"comfy-tests/{uuid.uuid4().hex[:12]}/demo"
    return graph
