"""The whole system on this machine: two stand-in instances, a Celery worker process and the
reconciler process on the real Postgres and Redis, and the API in-process.

The worker is another process, so these tests commit for real, each system in a database
and on a queue of its own, dropped afterwards.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.engine import make_engine
from app.main import create_app
from app.services import keys
from app.settings import Settings
from app.stores import events
from tests.conftest import REDIS_URL, scratch_database, scratch_queue
from tests.support.run_counts import assert_counts_match_in
from tests.support.serving import serve
from tests.support.standin_process import REPO_ROOT, Standin, launch

pytestmark = pytest.mark.integration

# Short leases and quick reconciling, so faults are noticed in seconds, not minutes.
FAST_TIMINGS = {
    "HEARTBEAT_S": "0.5",
    "LEASE_S": "3",
    "STALL_S": "2",
    "RECONCILE_INTERVAL_S": "0.5",
    "INSTANCE_SLOTS": "2",
    "UNREACHABLE_S": "2",
}


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=10)


@dataclass
class System:
    """Handles on every moving part, for tests that break them on purpose."""

    settings: Settings
    env: dict[str, str]
    instances: list[Standin]
    workdir: Path
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, *command: str) -> Process:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", *command],
                cwd=REPO_ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes[name] = Process(name, popen, log_path)
        return self.processes[name]

    def start_worker(self, name: str = "worker") -> Process:
        return self.start(
            name,
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={self.worker_concurrency()}",
            "-Q",
            self.settings.queue_name,
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-n",
            f"{name}-{os.getpid()}@%h",
        )

    def worker_concurrency(self) -> int:
        """As deployed (`Settings.worker_concurrency`): a process keeping each slot, and one
        per instance for the other messages (a sweep's start and finalize, a resume)."""
        slots = int(self.env["INSTANCE_SLOTS"])
        return self.settings.model_copy(update={"instance_slots": slots}).worker_concurrency

    def start_reconciler(self) -> Process:
        return self.start("reconciler", "workers.reconciler")

    def logs(self) -> str:
        return "\n".join(f"===== {p.name}\n{p.log()[-6000:]}" for p in self.processes.values())

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()


def launch_instances(root: Path, count: int, *args: str) -> list[Standin]:
    return [launch(root / f"instance-{n}", *args) for n in range(count)]


@pytest.fixture
def system_database() -> Iterator[str]:
    """Each system gets its own database and queue: the reconciler acts on every sweep it
    finds, so another test's leftovers must not be there to find."""
    with scratch_database("it") as url:
        yield url


@pytest.fixture
def system_queue() -> Iterator[str]:
    with scratch_queue() as name:
        yield name


@pytest.fixture
def system_factory(
    system_database: str, system_queue: str, tmp_path: Path
) -> Iterator[Callable[..., System]]:
    database_url, queue_name = system_database, system_queue
    systems: list[System] = []

    def build(
        *standin_args: str,
        instances: int = 2,
        timings: dict[str, str] | None = None,
        tags: Sequence[str] = (),
    ) -> System:
        """`tags[n]` are the `+`-joined tags of instance n in COMFY_INSTANCES."""
        standins = launch_instances(tmp_path, instances, *standin_args)
        tagged = [f"#{t}" if t else "" for t in (*tags, *[""] * instances)]
        urls = ",".join(s.base_url + tag for s, tag in zip(standins, tagged, strict=False))
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "QUEUE_NAME": queue_name,
            "COMFY_INSTANCES": urls,
            "DATA_DIR": str(tmp_path / "data"),
            **FAST_TIMINGS,
            **(timings or {}),
        }
        settings = Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue_name,
            comfy_instances=urls,
            data_dir=tmp_path / "data",
            object_info_ttl_s=0,
        )
        system = System(settings, env, standins, tmp_path)
        systems.append(system)
        system.start_worker()
        system.start_reconciler()
        return system

    yield build
    for system in systems:
        system.stop_all()
        for standin in system.instances:
            if standin.process.poll() is None:
                standin.process.kill()
                standin.process.wait(timeout=10)


@pytest.fixture
def api_for() -> Iterator[Callable[[System], httpx.Client]]:
    """The API served by uvicorn on loopback, and an HTTP client holding a fresh key."""
    with ExitStack() as stack:

        def make(system: System, role: str = "member") -> httpx.Client:
            app = create_app(system.settings)
            stack.callback(app.state.engine.dispose)
            base_url = stack.enter_context(serve(app))
            with app.state.session_factory() as session:
                key = keys.create_key(session, "it", role=role).plaintext
            headers = {"Authorization": f"Bearer {key}"}
            return stack.enter_context(httpx.Client(base_url=base_url, headers=headers, timeout=30))

        yield make


def wait_for_sweep(
    api: httpx.Client, sweep_id: str, system: System, timeout: float = 60.0, until: str = "final"
) -> dict[str, Any]:
    """Poll the sweep until it is final (or `until` status); fail with every log if not."""
    final = {"succeeded", "partial", "failed", "cancelled"}
    deadline = time.monotonic() + timeout
    sweep: dict[str, Any] = {}
    while time.monotonic() < deadline:
        sweep = api.get(f"/v1/sweeps/{sweep_id}").json()
        if sweep["status"] in final if until == "final" else sweep["status"] == until:
            if sweep["status"] in final:
                # Every fault case ends here: the counters the API read must match the runs.
                counts = assert_counts_match_in(system.settings.database_url, UUID(sweep_id))
                assert sweep["counts"] == {s.value: n for s, n in counts.items()}
            return sweep
        time.sleep(0.2)
    pytest.fail(f"sweep not {until} after {timeout}s: {sweep}\n{system.logs()}")


def all_runs(api: httpx.Client, sweep_id: str) -> list[dict[str, Any]]:
    page = api.get(f"/v1/sweeps/{sweep_id}/runs", params={"limit": 500}).json()
    items: list[dict[str, Any]] = page["items"]
    return items


def queue_of(standin: Standin) -> dict[str, Any]:
    queue: dict[str, Any] = httpx.get(f"{standin.base_url}/queue", timeout=5).json()
    return queue


def logged_events(system: System, sweep_id: str) -> list[tuple[int, str]]:
    """(id, type) of every event the sweep logged, read from the database."""
    engine = make_engine(system.settings.database_url)
    try:
        with Session(engine) as session:
            team_id = session.scalar(sa.text("SELECT team_id FROM sweeps WHERE id = :id"),
                                     {"id": sweep_id})  # fmt: skip
            assert isinstance(team_id, UUID)
            found = events.after(
                session, team_id=team_id, after_id=0, limit=100_000, sweep_id=UUID(sweep_id)
            )
    finally:
        engine.dispose()
    return [(event.id, event.type.value) for event in found]
