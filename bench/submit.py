"""Submit-to-201 time on Postgres for sweeps of 100 and 10,000 runs.

Creates a scratch database, migrates it, and posts sweeps through the ASGI app in-process
(validation, expansion, bulk insert, commit; no network hop). Prints median and p95.

    make bench            # or: python -m bench.submit --repeat 20
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.db.migrate import upgrade_to_head
from app.main import create_app
from app.services import keys
from app.settings import Settings

ADMIN_URL = os.environ.get(
    "BENCH_DATABASE_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

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


def time_submissions(client: TestClient, body: dict[str, Any], repeat: int) -> list[float]:
    client.post("/v1/sweeps", json=body)  # warm caches and connections
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.post("/v1/sweeps", json=body)
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 201, response.text
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with scratch_database() as url:
        upgrade_to_head(url)
        app = create_app(Settings(database_url=url))
        with app.state.session_factory() as session:
            key = keys.create_key(session, "bench").plaintext
        with TestClient(app, headers={"Authorization": f"Bearer {key}"}) as client:
            for label, body in SWEEPS.items():
                ms = sorted(time_submissions(client, body, args.repeat))
                p95 = ms[min(len(ms) - 1, int(0.95 * len(ms)))]
                print(
                    f"submit {label:>11}: median {statistics.median(ms):7.1f} ms, "
                    f"p95 {p95:7.1f} ms, min {ms[0]:7.1f} ms (n={args.repeat}, Postgres)"
                )
        app.state.engine.dispose()


if __name__ == "__main__":
    main()
