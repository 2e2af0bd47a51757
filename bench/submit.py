"""Submit-to-201 time and the cost of reading a sweep, over real HTTP, on Postgres.

Starts two ComfyUI stand-ins and the API under uvicorn (`app.main:create_app --factory`) as
subprocesses on a scratch database, so submissions go through the network hop and the
preflight against the pool's real `/object_info`. Prints for sweeps of 100 and 10,000 runs:

- median and p95 of submit-to-201 (client clock, keep-alive connection), and the median
  latency of `GET /v1/sweeps/{id}`;
- for both, the CPU the API process and the Postgres backends spend per request (from
  /proc: the server must run on this machine; pg_stat_statements is not loaded there).

No worker runs: the sweeps stay pending, so every read sees the same rows.

    make bench            # or: python -m bench.submit --repeat 15 --reads 500
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import redis
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from app.db.migrate import upgrade_to_head
from app.services import keys
from bench.processes import free_port, spawn, stop, wait_up

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STANDINS = 2
READ_ROUNDS = 5

SWEEPS: dict[str, dict[str, Any]] = {
    "100 runs": {
        "workflow": "demo-noise",
        "axes": [
            {"param": "blur_radius", "values": "1-10"},
            {"param": "strength", "values": "0.1-1 [10]"},
        ],
    },
    "10,000 runs": {
        "workflow": "sd15-txt2img",
        "axes": [
            {"param": "cfg", "values": "1-10 [25]"},
            {"param": "steps", "values": "10-49"},
            {"param": "sampler", "values": "euler, dpmpp_2m, heun, ddim, lms"},
        ],
        "seeds": {"count": 2, "start": 1},
    },
}


@contextmanager
def scratch_database() -> Iterator[str]:
    name = f"comfy_sweep_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Served:
    api_url: str
    api_pid: int
    database_url: str
    key: str


@contextmanager
def served_api(workdir: Path) -> Iterator[Served]:
    """Stand-ins, then uvicorn serving the app on a scratch database, with one API key."""
    with ExitStack() as stack:
        database_url = stack.enter_context(scratch_database())
        upgrade_to_head(database_url)
        engine = create_engine(database_url)
        with Session(engine) as session:
            key = keys.create_key(session, "bench").plaintext
        engine.dispose()
        urls = []
        for n in range(STANDINS):
            port, log = free_port(), workdir / f"standin{n}.log"
            args = ["app.standin", "--port", str(port), "--output-dir", str(workdir / f"out{n}")]
            process = spawn(args, dict(os.environ), log)
            stack.callback(stop, process)
            urls.append(f"http://127.0.0.1:{port}")
            wait_up(f"{urls[-1]}/system_stats", "stand-in", process, log)
        queue = f"comfy-sweep-bench-{os.getpid()}-{time.monotonic_ns()}"
        # The start messages pile up unread in this queue; dropped at the end.
        stack.callback(lambda: redis.Redis.from_url(REDIS_URL).delete(queue))
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "REDIS_URL": REDIS_URL,
            "QUEUE_NAME": queue,
            "COMFY_INSTANCES": ",".join(urls),
            "DATA_DIR": str(workdir / "data"),
        }
        port, log = free_port(), workdir / "api.log"
        api = spawn(
            [
                "uvicorn",
                "app.main:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            env,
            log,
        )
        stack.callback(stop, api)
        api_url = f"http://127.0.0.1:{port}"
        wait_up(f"{api_url}/healthz", "API", api, log)
        yield Served(api_url, api.pid, database_url, key)


def _cpu_s(pids: Sequence[int]) -> float:
    """utime + stime of processes, from /proc."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def _backends(database_url: str) -> list[int]:
    """The Postgres backends serving the API: every connection to the scratch database."""
    engine = create_engine(database_url)
    with engine.connect() as conn:
        pids = conn.execute(
            text(
                "SELECT pid FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'"
            )
        ).scalars()
        found = [int(p) for p in pids]
    engine.dispose()
    return found


def _summary(ms: list[float]) -> str:
    ms = sorted(ms)
    p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
    return f"median {statistics.median(ms):7.1f} ms, p95 {p95:7.1f} ms, min {ms[0]:7.1f} ms"


def _timed(call: Callable[[], httpx.Response], expect: int) -> float:
    started = time.perf_counter()
    response = call()
    took = (time.perf_counter() - started) * 1000
    assert response.status_code == expect, response.text
    return took


@dataclass(frozen=True)
class Cost:
    """Wall time per request, and the CPU behind it: on a shared machine the CPU times move
    less with the neighbours' load than the wall times do."""

    latency_ms: list[float]
    api_cpu_ms: float  # per request
    postgres_cpu_ms: float  # per request, every backend of the scratch database

    @staticmethod
    def pooled(costs: Sequence[Cost]) -> Cost:
        return Cost(
            [ms for cost in costs for ms in cost.latency_ms],
            statistics.mean(cost.api_cpu_ms for cost in costs),
            statistics.mean(cost.postgres_cpu_ms for cost in costs),
        )

    def line(self, n: int) -> str:
        return (
            f"{_summary(self.latency_ms)}; CPU per request: API {self.api_cpu_ms:.2f} ms, "
            f"Postgres {self.postgres_cpu_ms:.2f} ms (n={n})"
        )


def measure(served: Served, call: Callable[[], httpx.Response], expect: int, times: int) -> Cost:
    for _ in range(3):
        call()  # every pooled connection opened, plans and the node specs cached
    backends = _backends(served.database_url)
    api_before, pg_before = _cpu_s([served.api_pid]), _cpu_s(backends)
    latency = [_timed(call, expect) for _ in range(times)]
    api_cpu = (_cpu_s([served.api_pid]) - api_before) * 1000 / times
    pg_cpu = (_cpu_s(backends) - pg_before) * 1000 / times
    return Cost(latency, api_cpu, pg_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="submissions per sweep size")
    parser.add_argument("--reads", type=int, default=500, help="status reads per sweep size")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, served_api(Path(tmp)) as served:
        headers = {"Authorization": f"Bearer {served.key}"}
        with httpx.Client(base_url=served.api_url, headers=headers, timeout=60) as client:
            last: dict[str, str] = {}
            for label, body in SWEEPS.items():
                cost = measure(
                    served, partial(client.post, "/v1/sweeps", json=body), 201, args.repeat
                )
                print(f"submit {label:>11}: {cost.line(args.repeat)}")
                last[label] = client.post("/v1/sweeps", json=body).json()["id"]
            # In alternating rounds, so a neighbour's burst of load hits both sizes alike.
            rounds: dict[str, list[Cost]] = {label: [] for label in last}
            for _ in range(READ_ROUNDS):
                for label, sweep_id in last.items():
                    call = partial(client.get, f"/v1/sweeps/{sweep_id}")
                    rounds[label].append(measure(served, call, 200, args.reads // READ_ROUNDS))
            for label, costs in rounds.items():
                print(f"read   {label:>11}: {Cost.pooled(costs).line(args.reads)}")


if __name__ == "__main__":
    main()
