"""A burst of status reads against a real uvicorn on Postgres: does the API keep answering?

Open loop: requests go out at a fixed rate whatever the answers, as a crowd of clients
would send them, for a fixed time; `/healthz` is probed twice a second during the burst and
after it. Reports the answers by status, their latency, the probes' latency, and how long
after the burst a status read answers again within a second.

    python -m bench.burst                       # 200 req/s for 20 s
    python -m bench.burst --rate 400 --seconds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import httpx
import redis
import sqlalchemy as sa

from app.db.engine import make_engine, make_session_factory
from app.db.migrate import upgrade_to_head
from app.services import keys

ADMIN_URL = os.environ.get(
    "TEST_DATABASE_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SWEEP = {"workflow": "demo-noise", "axes": [{"param": "strength", "values": [0.2, 0.8]}]}


@contextmanager
def scratch_database() -> Iterator[str]:
    admin_url = sa.make_url(ADMIN_URL)
    name = f"comfy_sweep_burst_{uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        upgrade_to_head(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@contextmanager
def api_process(database_url: str, queue: str) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL}
    env["QUEUE_NAME"] = queue
    command = [sys.executable, "-m", "app.serve", "--port", str(port), "--log-level", "critical"]
    process = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(30)


async def burst(base: str, key: str, rate: float, seconds: float) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=200)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits) as client:
        created = await client.post("/v1/sweeps", json=SWEEP)
        created.raise_for_status()
        path = f"/v1/sweeps/{created.json()['id']}"
        answers: list[tuple[str, float]] = []
        probes: list[tuple[float, float]] = []  # (time since start, latency)

        async def read() -> None:
            began = time.monotonic()
            try:
                response = await client.get(path, timeout=120)
                outcome = str(response.status_code)
            except httpx.TimeoutException:
                outcome = "timeout"
            except httpx.TransportError as error:
                outcome = type(error).__name__
            answers.append((outcome, time.monotonic() - began))

        async def probe(start: float, until: float) -> None:
            async with httpx.AsyncClient(base_url=base) as prober:
                while time.monotonic() < until:
                    began = time.monotonic()
                    try:
                        await prober.get("/healthz", timeout=10)
                        latency = time.monotonic() - began
                    except httpx.TransportError:
                        latency = float("inf")
                    probes.append((began - start, latency))
                    await asyncio.sleep(max(0.0, 0.5 - (time.monotonic() - began)))

        start = time.monotonic()
        prober = asyncio.create_task(probe(start, start + seconds + 30))
        tasks = []
        for i in range(int(rate * seconds)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            tasks.append(asyncio.create_task(read()))
        ended = time.monotonic()
        recovered = await _recovery(client, path, ended)
        await asyncio.gather(*tasks)
        await prober
        _report(answers, probes, seconds, recovered)


async def _recovery(client: httpx.AsyncClient, path: str, ended: float) -> float:
    """Seconds after the burst until a status read answers 200 within a second."""
    while True:
        try:
            if (await client.get(path, timeout=1)).status_code == 200:
                return time.monotonic() - ended
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)


def _report(
    answers: list[tuple[str, float]],
    probes: list[tuple[float, float]],
    seconds: float,
    recovered: float,
) -> None:
    print("answers", dict(Counter(outcome for outcome, _ in answers)))
    for outcome in sorted({o for o, _ in answers}):
        latencies = sorted(t for o, t in answers if o == outcome)
        p50 = statistics.median(latencies)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(f"  {outcome}: p50={p50:.3f}s p99={p99:.3f}s max={latencies[-1]:.3f}s")
    for label, chosen in (
        ("during", [t for at, t in probes if at < seconds]),
        ("after", [t for at, t in probes if at >= seconds]),
    ):
        if chosen:
            print(
                f"healthz {label}: n={len(chosen)} p50={statistics.median(chosen):.3f}s "
                f"max={max(chosen):.3f}s"
            )
    print(f"status reads answer within 1 s again {recovered:.1f}s after the burst")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    queue = f"comfy-sweep-burst-{uuid4().hex[:12]}"
    with scratch_database() as url:
        engine = make_engine(url)
        with make_session_factory(engine)() as session:
            key = keys.create_key(session, "burst").plaintext
        engine.dispose()
        try:
            with api_process(url, queue) as base:
                asyncio.run(burst(base, key, args.rate, args.seconds))
        finally:
            redis.Redis.from_url(REDIS_URL).delete(queue)


if __name__ == "__main__":
    main()
