"""The ComfyUI stand-in as a real subprocess on a free port, for every suite that needs one
(the stand-in's own tests, the client's, the integration tests). Tests talk to it only over
the wire, never by importing it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
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
    root: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output_dir(self) -> Path:
        return self.root / "output"

    @property
    def log_path(self) -> Path:
        return self.root / "standin.log"

    def ws_url(self, client_id: str) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?clientId={client_id}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

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
    """Start `python -m app.standin` with outputs under `root`; returns once it answers."""
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
