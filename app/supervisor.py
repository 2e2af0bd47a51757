"""The launcher's child processes: started, watched and stopped together.

Each child runs in a session of its own, so the terminal's Ctrl-C reaches only the launcher,
which then stops the children in order (a Celery worker gets SIGTERM for its warm shutdown;
whatever is left of a child's process group after the grace period is killed). A child that
exits on its own is reported at once with the end of its log, instead of leaving the API
accepting work that nothing will run.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time
from collections import deque
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

# prctl(PR_SET_PDEATHSIG): the kernel signals a child when the launcher dies, even by SIGKILL.
_PR_SET_PDEATHSIG = 1


class ChildExited(Exception):
    """A child stopped while the launcher still needed it."""

    def __init__(self, name: str, returncode: int, log_path: Path) -> None:
        self.name, self.returncode, self.log_path = name, returncode, log_path
        super().__init__(f"{name} exited with code {returncode}")

    def report(self, lines: int = 20) -> str:
        tail = log_tail(self.log_path, lines)
        shown = tail or "(its log is empty)"
        return (
            f"{self.name} exited unexpectedly (exit code {self.returncode}). "
            f"Last lines of {self.log_path}:\n{shown}"
        )


@dataclass(frozen=True)
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path


def log_tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as log:
            kept = deque(log, maxlen=lines)
    except OSError:
        return ""
    return b"".join(kept).decode("utf-8", errors="replace").rstrip()


def _die_with_parent() -> None:
    if sys.platform == "linux":
        with suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Supervisor:
    def __init__(self, env: dict[str, str], log_dir: Path, cwd: Path) -> None:
        self.env, self.log_dir, self.cwd = env, log_dir, cwd
        self.children: list[Child] = []
        self.terminated_at: float | None = None

    def start(self, name: str, *args: str) -> None:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            # Our own modules with fixed arguments; nothing here comes from a request.
            process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", *args],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
                # Only prctl runs between fork and exec; every child starts before the API thread.
                preexec_fn=_die_with_parent,
            )
        self.children.append(Child(name, process, log_path))

    def check(self) -> None:
        """Raise ChildExited for the first child that is no longer running."""
        for child in self.children:
            returncode = child.process.poll()
            if returncode is not None:
                raise ChildExited(child.name, returncode, child.log_path)

    def terminate(self) -> None:
        """Ask every child to stop (SIGTERM: a Celery worker's warm shutdown); once only."""
        if self.terminated_at is not None:
            return
        self.terminated_at = time.monotonic()
        for child in self.children:
            with suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)

    def stop(self, grace_s: float = 7.0) -> None:
        """terminate(), wait until grace_s after it, then SIGKILL each child's whole process
        group: the grace counts from the first SIGTERM, so a slow API stop does not add to it."""
        self.terminate()
        deadline = (self.terminated_at or time.monotonic()) + grace_s
        for child in self.children:
            with suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for child in self.children:
            # Also reaches what the child started itself (a Celery worker's pool processes).
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(child.process.pid, signal.SIGKILL)
            with suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=1)
