"""`/metrics` and `/readyz` of a served API on the whole system: a real worker and
reconciler writing their metrics to a shared multiprocess directory, stand-in instances,
Postgres and Redis. The scrape's numbers are held against a recount of the runs, during a
sweep (its instances drained, so the numbers stand still) and after it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from app.main import create_app
from app.metrics.exposition import prepare_directory
from app.services import keys
from tests.integration.conftest import System, wait_for_sweep
from tests.integration.test_sweep_execution import submit
from tests.support.serving import serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

SystemFactory = Callable[..., System]
RUNS = 40
SWEEP = {
    "workflow": "sd15-txt2img",
    "base": {"steps": 8, "width": 64, "height": 64},
    "axes": [{"param": "seed", "values": f"1-{RUNS}"}],
}


class Served:
    """The API served on loopback with the system's metrics directory, and its clients."""

    def __init__(self, system: System, metrics_dir: Path, stack: ExitStack) -> None:
        settings = system.settings.model_copy(update={"prometheus_multiproc_dir": metrics_dir})
        app = create_app(settings)
        stack.callback(app.state.engine.dispose)
        self.base_url = stack.enter_context(serve(app))
        with app.state.session_factory() as session:
            member = keys.create_key(session, "metrics").plaintext
            admin = keys.create_key(session, "ops", role="admin").plaintext
        self.api = stack.enter_context(self._client(member))
        self.admin = stack.enter_context(self._client(admin))
        self.anonymous = stack.enter_context(httpx.Client(base_url=self.base_url, timeout=30))
        self.engine = sa.create_engine(system.settings.database_url, poolclass=sa.NullPool)
        stack.callback(self.engine.dispose)

    def _client(self, key: str) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=30)

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = self.anonymous.get("/metrics")
        assert response.status_code == 200, response.text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def recount(self) -> dict[str, int]:
        """What the runs table says, counted row by row (not from the sweeps' counters)."""
        with self.engine.connect() as connection:
            by_status: dict[str, int] = dict(
                connection.execute(sa.text("SELECT status, count(*) FROM runs GROUP BY 1")).all()
            )
            starts = connection.scalar(sa.text("SELECT coalesce(sum(attempts), 0) FROM runs"))
            retried = connection.scalar(
                sa.text("SELECT count(*) FROM run_attempts WHERE status = 'queued'")
            )
        return {**by_status, "starts": int(starts or 0), "retried": int(retried or 0)}

    def set_drained(self, drained: bool) -> None:
        for instance in self.admin.get("/v1/instances").json():
            action = "drain" if drained else "undrain"
            answer = self.admin.post(f"/v1/instances/{instance['id']}/{action}")
            assert answer.status_code == 200, answer.text


def total(
    scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **match: str
) -> float:
    return sum(
        value
        for (sample, labels), value in scraped.items()
        if sample == name and all((k, v) in labels for k, v in match.items())
    )


def as_scraped(scraped: dict[tuple[str, tuple[tuple[str, str], ...]], float]) -> dict[str, int]:
    """The scrape's numbers, under the recount's names."""
    numbers = {
        status: int(total(scraped, "comfy_sweep_runs", status=status))
        for status in ("queued", "running", "succeeded", "failed", "cancelled")
    }
    numbers["queue_depth"] = int(total(scraped, "comfy_sweep_queue_depth"))
    numbers["starts"] = int(total(scraped, "comfy_sweep_run_queue_wait_seconds_count"))
    numbers["retried"] = int(total(scraped, "comfy_sweep_runs_finished_total", outcome="retried"))
    for outcome in ("succeeded", "failed"):
        finished = total(scraped, "comfy_sweep_runs_finished_total", outcome=outcome)
        numbers[f"finished_{outcome}"] = int(finished)
    numbers["durations"] = int(total(scraped, "comfy_sweep_run_duration_seconds_count"))
    return numbers


def expected(recount: dict[str, int]) -> dict[str, int]:
    numbers = {
        s: recount.get(s, 0) for s in ("queued", "running", "succeeded", "failed", "cancelled")
    }
    recorded = numbers["succeeded"] + numbers["failed"] + recount["retried"]
    return {
        **numbers,
        "queue_depth": numbers["queued"],  # the one sweep runs: all its queued runs may start
        "starts": recount["starts"],
        "retried": recount["retried"],
        "finished_succeeded": numbers["succeeded"],
        "finished_failed": numbers["failed"],
        "durations": recorded,
    }


# Counters this test process may already hold: the app is served in-process, and its scrape
# adds the process's own registry, where earlier tests recording runs in-process counted.
COUNTERS = ("starts", "retried", "finished_succeeded", "finished_failed", "durations")


def counted_before(served: Served) -> dict[str, int]:
    scraped = as_scraped(served.scrape())
    return {name: scraped[name] for name in COUNTERS}


def settled(served: Served, before: dict[str, int], timeout: float = 20.0) -> dict[str, int]:
    """The scrape, less the counts `before` it, once it agrees with the recount: a worker
    counts a run just after its commit, so a scrape in between may be one behind; it must
    catch up, not drift."""
    deadline = time.monotonic() + timeout
    while True:
        want = expected(served.recount())
        scraped = as_scraped(served.scrape())
        got = {name: value - before.get(name, 0) for name, value in scraped.items()}
        if got == want or time.monotonic() > deadline:
            assert got == want
            return got
        time.sleep(0.2)


def wait_for(condition: Callable[[], bool], system: System, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after {timeout}s\n{system.logs()}")
        time.sleep(0.2)


@pytest.fixture
def metrics_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "metrics"
    prepare_directory(directory)
    return directory


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_a_scrape_during_and_after_a_sweep_matches_the_database(
    system_factory: SystemFactory, metrics_dir: Path, stack: ExitStack
) -> None:
    system = system_factory(
        "--step-ms", "50", timings={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    )
    served = Served(system, metrics_dir, stack)
    before = counted_before(served)
    sweep_id = submit(served.api, SWEEP)

    def progressed() -> bool:
        counts: dict[str, Any] = served.api.get(f"/v1/sweeps/{sweep_id}").json()["counts"]
        return int(counts["succeeded"]) >= 4

    wait_for(progressed, system, "4 runs done")
    served.set_drained(True)
    wait_for(lambda: served.recount().get("running", 0) == 0, system, "drained")
    during = settled(served, before)
    assert during["queued"] > 0, "the sweep ended before it could be watched"
    assert during["queue_depth"] == during["queued"]

    served.set_drained(False)
    sweep = wait_for_sweep(served.api, sweep_id, system, timeout=120)
    assert sweep["status"] == "succeeded", system.logs()
    after = settled(served, before)
    assert (after["finished_succeeded"], after["queued"], after["queue_depth"]) == (RUNS, 0, 0)

    scraped = served.scrape()
    pool = served.admin.get("/v1/instances").json()
    used = [i for i in pool if i["runs_succeeded"]]
    assert sum(i["runs_succeeded"] for i in pool) == RUNS
    assert all(i["runs_failed"] == 0 and i["running_prompts"] == 0 for i in pool)
    # One checkpoint in the sweep: each instance loads it once, the first time it runs one.
    assert all(i["loaded_model_key"] for i in used)
    for instance in pool:
        loads = total(scraped, "comfy_sweep_model_loads_total", instance=instance["id"])
        assert loads == (1 if instance in used else 0)
        assert total(scraped, "comfy_sweep_instance_slots_in_use", instance=instance["id"]) == 0
    polled = ("route", "/v1/sweeps/{sweep_id}")
    assert total(scraped, "comfy_sweep_http_request_duration_seconds_count", route=polled[1]) > 0
    assert sweep_id not in served.anonymous.get("/metrics").text
    # The reconciler sampled the pool while the runs waited.
    assert total(scraped, "comfy_sweep_instance_demand_seconds_total") > 0


def test_readyz_follows_the_database_and_the_instances(
    system_factory: SystemFactory, metrics_dir: Path, stack: ExitStack
) -> None:
    system = system_factory()
    served = Served(system, metrics_dir, stack)
    ready = lambda: served.anonymous.get("/readyz").status_code == 200  # noqa: E731
    wait_for(ready, system, "ready")

    name = sa.make_url(system.settings.database_url).database
    admin = sa.create_engine(
        sa.make_url(system.settings.database_url).set(database="postgres"),
        isolation_level="AUTOCOMMIT",
        poolclass=sa.NullPool,
    )
    stack.callback(admin.dispose)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        connection.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "  # noqa: S608
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )
    try:
        down = served.anonymous.get("/readyz")
        assert down.status_code == 503, down.text
        assert down.headers["Retry-After"] == "5"
        assert (down.json()["database"], down.json()["instances"]) == ("unavailable", "unknown")
        assert "database" in down.json()["detail"]
        assert served.anonymous.get("/healthz").status_code == 200
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    wait_for(ready, system, "ready again")

    for standin in system.instances:
        standin.process.kill()
        standin.process.wait(timeout=10)

    def instances_down() -> bool:
        answer = served.anonymous.get("/readyz")
        return answer.status_code == 503 and answer.json()["instances"] == "unavailable"

    wait_for(instances_down, system, "unready without instances", timeout=30)
