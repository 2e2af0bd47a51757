"""The whole of comfy-sweep as separate processes, as in production: ComfyUI stand-ins, the
API under uvicorn, a Celery worker and the reconciler, on a scratch Postgres database and a
private Redis queue."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.services import keys
from app.settings import Settings
from bench.processes import free_port, spawn, stop, tree_cpu_s, wait_up
from bench.submit import scratch_database

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


@dataclass(frozen=True)
class System:
    settings: Settings
    standins: list[str]  # base URLs
    api_url: str
    api_key: str
    api: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes]
    reconciler: subprocess.Popen[bytes]
    standin_processes: list[subprocess.Popen[bytes]]

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds each component has used so far."""
        return {
            "worker": tree_cpu_s(self.worker.pid),
            "api": tree_cpu_s(self.api.pid),
            "reconciler": tree_cpu_s(self.reconciler.pid),
            "stand-ins": sum(tree_cpu_s(p.pid) for p in self.standin_processes),
        }


@contextmanager
def running_system(workdir: Path, instances: int, standin_args: list[str]) -> Iterator[System]:
    with ExitStack() as stack:
        workdir.mkdir(parents=True, exist_ok=True)
        database_url = stack.enter_context(scratch_database())
        upgrade_to_head(database_url)
        standins, urls = [], []
        for n in range(instances):
            port = free_port()
            out = str(workdir / f"out{n}")
            args = ["app.standin", "--port", str(port), "--output-dir", out, *standin_args]
            process = spawn(args, dict(os.environ), workdir / f"standin{n}.log")
            stack.callback(stop, process)
            standins.append(process)
            urls.append(f"http://127.0.0.1:{port}")
        for url in urls:
            wait_up(f"{url}/system_stats", "stand-in")
        queue = f"comfy-sweep-bench-{os.getpid()}-{time.monotonic_ns()}"
        settings = Settings(
            database_url=database_url,
            redis_url=REDIS_URL,
            queue_name=queue,
            comfy_instances=",".join(urls),
            data_dir=workdir / "data",
        )
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "QUEUE_NAME": queue,
            "COMFY_INSTANCES": settings.comfy_instances,
            "DATA_DIR": str(settings.data_dir),
            "OBJECT_INFO_TTL_S": "60",
        }
        api_port = free_port()
        api = spawn(
            [
                "app.serve",  # API_WORKERS, API_LIMIT_CONCURRENCY, ... from the environment
                "--host",
                "127.0.0.1",
                "--port",
                str(api_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
            workdir / "api.log",
        )
        stack.callback(stop, api)
        worker_args = ["celery", "-A", "workers.celery_app", "worker", "--loglevel=WARNING"]
        worker_args += [f"--concurrency={settings.worker_concurrency}", "-Q", queue]
        worker_args += ["--without-gossip", "--without-mingle"]
        worker = spawn(worker_args, env, workdir / "worker.log")
        stack.callback(stop, worker)
        reconciler = spawn(["workers.reconciler"], env, workdir / "reconciler.log")
        stack.callback(stop, reconciler)
        api_url = f"http://127.0.0.1:{api_port}"
        wait_up(f"{api_url}/healthz", "API")
        time.sleep(3)  # the worker's processes fork and connect
        yield System(
            settings, urls, api_url, _mint_key(database_url), api, worker, reconciler, standins
        )


def _mint_key(database_url: str) -> str:
    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:
            return keys.create_key(session, "bench").plaintext
    finally:
        engine.dispose()
