"""`make smoke`: prove the main job on a fresh, runtime-only install, as a new user runs it.

In a throwaway copy of the checkout with a virtual environment of its own (runtime
dependencies only, no dev extras), it runs `make run` on its embedded defaults three times:

1. with the machine's Redis: the demo sweep reaches `succeeded`, its grid and one output are
   fetched over HTTP, then Ctrl-C (SIGINT to the foreground process group) must leave no
   process behind within 10 s;
2. with no Redis answering (a network namespace of its own, so the embedded SQLite broker is
   used): the same, stopped by SIGTERM to the launcher alone;
3. the worker is SIGKILLed: the launcher must say so within 5 s and stop everything.

Standard library only: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.error import HTTPError, URLError

REPO = Path(__file__).resolve().parent.parent
DEMO_TIMEOUT_S = 240
STOP_TIMEOUT_S = 10
DEATH_REPORT_S = 5
# The launcher's environment as on a fresh machine: nothing says where the stores are.
CLEARED = ("REDIS_URL", "BROKER_URL", "DATABASE_URL", "QUEUE_NAME", "COMFY_INSTANCES", "DATA_DIR")


class SmokeFailed(Exception):
    pass


def say(line: str) -> None:
    print(f"smoke: {line}", flush=True)


def copy_checkout(into: Path) -> None:
    """The files git would have on a clean clone (tracked, plus new files not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, (item.decode() for item in listed)):
        source = REPO / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)


def install(copy: Path) -> None:
    subprocess.run(["make", "-s", "install"], cwd=copy, check=True)
    python = copy / ".venv" / "bin" / "python"
    dev_only = subprocess.run([python, "-c", "import pytest"], capture_output=True)
    if dev_only.returncode == 0:
        raise SmokeFailed("the runtime install has pytest: dev extras leaked into it")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Launch:
    """One `make run` in the copy, its output in a file we read as it grows."""

    def __init__(self, copy: Path, name: str) -> None:
        self.copy, self.port = copy, free_port()
        self.log_path = copy / f"make-run-{name}.log"
        env = {k: v for k, v in os.environ.items() if k not in CLEARED}
        env["PORT"] = str(self.port)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                ["make", "-s", "run"],
                cwd=copy,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a process group of its own, as a terminal's job
            )
        self.base = f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_line(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.output(), re.MULTILINE)
            if found:
                return found
            if self.process.poll() is not None:
                raise SmokeFailed(f"make run exited before {pattern!r}:\n{self.output()}")
            time.sleep(0.2)
        raise SmokeFailed(f"no {pattern!r} within {timeout:.0f} s:\n{self.output()}")

    def get(self, path: str, key: str) -> tuple[int, str, bytes]:
        request = urllib.request.Request(
            self.base + path, headers={"Authorization": f"Bearer {key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.headers["Content-Type"], response.read()
        except HTTPError as error:
            return error.code, error.headers["Content-Type"], error.read()

    def survivors(self) -> list[str]:
        """Processes still running from the copy: its venv's Python, make, or anything in it."""
        marker = str(self.copy)
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                cwd = os.readlink(entry / "cwd")
            except OSError:
                continue
            if marker in command or cwd.startswith(marker):
                found.append(f"{entry.name}: {command.strip()}")
        return found

    def kill(self) -> None:
        """After a failure: leave nothing running, whatever state the launch is in."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        for line in self.survivors():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(line.split(":")[0]), signal.SIGKILL)
        self.process.wait()

    def wait_all_gone(self, timeout: float) -> float:
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None and not self.survivors():
                return time.monotonic() - started
            time.sleep(0.1)
        left = "\n".join(self.survivors()) or "(make itself)"
        raise SmokeFailed(f"still running {timeout:.0f} s after the stop:\n{left}")


def demo_succeeds(launch: Launch) -> str:
    key = launch.wait_for_line(r"^API key: (\S+)$", 120).group(1)
    sweep_url = launch.wait_for_line(r"^Demo: (\S+)$", DEMO_TIMEOUT_S).group(1)
    path = sweep_url.removeprefix(launch.base)
    status, _, body = launch.get(path, key)
    sweep = json.loads(body)
    if status != 200 or sweep["status"] != "succeeded":
        raise SmokeFailed(f"demo sweep ended {sweep.get('status')}: {sweep}")
    say(f"demo sweep succeeded: {sweep['total']} runs, counts {sweep['counts']}")
    status, kind, grid = launch.get(f"{path}/grid", key)
    if status != 200 or kind != "image/png" or not grid.startswith(b"\x89PNG\r\n\x1a\n"):
        raise SmokeFailed(f"grid: HTTP {status} {kind}, {len(grid)} bytes")
    status, _, body = launch.get(f"{path}/runs/0", key)
    outputs = json.loads(body).get("outputs", [])
    if status != 200 or not outputs:
        raise SmokeFailed(f"run 0: HTTP {status}, outputs {outputs}")
    status, kind, image = launch.get(f"{path}/runs/0/outputs/0", key)
    if status != 200 or not image:
        raise SmokeFailed(f"output 0 of run 0: HTTP {status}, {len(image)} bytes")
    say(f"grid {len(grid)} bytes and output 0 of run 0 ({kind}, {len(image)} bytes) fetched")
    return key


def broker_line(launch: Launch) -> str:
    return launch.wait_for_line(r"^Broker: (.+)$", 5).group(1)


@contextlib.contextmanager
def launched(copy: Path, name: str) -> Iterator[Launch]:
    launch = Launch(copy, name)
    try:
        yield launch
    except BaseException:
        launch.kill()
        raise


def with_redis_then_ctrl_c(copy: Path) -> None:
    with launched(copy, "redis") as launch:
        ctrl_c_stops_everything(launch)


def ctrl_c_stops_everything(launch: Launch) -> None:
    demo_succeeds(launch)
    broker = broker_line(launch)
    if not broker.startswith("redis://"):
        raise SmokeFailed(f"Redis answers here, yet the broker is {broker}")
    os.killpg(launch.process.pid, signal.SIGINT)
    took = launch.wait_all_gone(STOP_TIMEOUT_S)
    say(f"Redis broker: Ctrl-C stopped every process in {took:.1f} s")


def without_redis_then_sigterm(copy: Path) -> None:
    with launched(copy, "sqlite-broker") as launch:
        sigterm_stops_everything(launch)


def sigterm_stops_everything(launch: Launch) -> None:
    demo_succeeds(launch)
    broker = broker_line(launch)
    if "sqlite" not in broker.lower():
        raise SmokeFailed(f"no Redis answers here, yet the broker is {broker}")
    launcher = [line for line in launch.survivors() if "app.launcher" in line]
    if not launcher:
        raise SmokeFailed("cannot find the launcher process")
    os.kill(int(launcher[0].split(":")[0]), signal.SIGTERM)
    took = launch.wait_all_gone(STOP_TIMEOUT_S)
    say(f"embedded SQLite broker: SIGTERM stopped every process in {took:.1f} s")


def worker_killed(copy: Path) -> None:
    with launched(copy, "worker-killed") as launch:
        a_dead_worker_is_reported(launch)


def a_dead_worker_is_reported(launch: Launch) -> None:
    launch.wait_for_line(r"^demo sweep: ", 120)
    workers = [line for line in launch.survivors() if "celery" in line and "worker" in line]
    if not workers:
        raise SmokeFailed(f"no worker process found:\n{launch.output()}")
    # The lowest pid is the worker's main process; its pool children come after it.
    main_pid = min(int(line.split(":")[0]) for line in workers)
    killed_at = time.monotonic()
    os.kill(main_pid, signal.SIGKILL)
    launch.wait_for_line(r"worker exited unexpectedly", DEATH_REPORT_S)
    said_in = time.monotonic() - killed_at
    took = launch.wait_all_gone(STOP_TIMEOUT_S)
    if launch.process.returncode == 0:
        raise SmokeFailed("make run exited 0 after its worker died")
    say(f"worker SIGKILLed: reported in {said_in:.1f} s, everything stopped {took:.1f} s later")


def in_own_network(copy: Path) -> None:
    """Re-run this script for phase 2 where 127.0.0.1:6379 has no Redis: a new network
    namespace holding only its own loopback."""
    subprocess.run(
        [
            "unshare",
            "--net",
            "sh",
            "-c",
            'ip link set lo up && exec "$0" "$1" --phase no-redis --copy "$2"',
            sys.executable,
            __file__,
            str(copy),
        ],
        check=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=["all", "no-redis"], default="all")
    parser.add_argument("--copy", type=Path, help="an installed copy (phase no-redis)")
    parser.add_argument("--keep", action="store_true", help="keep the copy for a look")
    args = parser.parse_args()
    try:
        if args.phase == "no-redis":
            without_redis_then_sigterm(args.copy)
            return
        copy = Path(tempfile.mkdtemp(prefix="comfy-sweep-smoke-"))
        try:
            copy_checkout(copy)
            say(f"fresh copy in {copy}; installing runtime dependencies only")
            install(copy)
            with_redis_then_ctrl_c(copy)
            in_own_network(copy)
            worker_killed(copy)
        finally:
            if not args.keep:
                shutil.rmtree(copy, ignore_errors=True)
    except (SmokeFailed, subprocess.CalledProcessError, URLError) as error:
        say(f"FAILED: {error}")
        sys.exit(1)
    say("passed")


if __name__ == "__main__":
    main()
