"""Priorities, fair share and quotas with the whole system: real Postgres, Redis, a Celery
worker, the reconciler, stand-in instances and the API over HTTP."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from app.main import create_app
from app.services import keys
from app.stores import teams
from tests.integration.conftest import System, wait_for_sweep
from tests.support.serving import serve

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

SystemFactory = Callable[..., System]
# 4 steps of 50 ms: a run holds its slot about 0.2 s, so queues drain slowly enough to watch.
SLOW_STEPS = ("--step-ms", "50")


def seeds(first: int, count: int, **extra: Any) -> dict[str, Any]:
    return {
        "workflow": "sd15-txt2img",
        "base": {"steps": 4, "width": 64, "height": 64},
        "axes": [{"param": "seed", "values": f"{first}-{first + count - 1}"}],
        **extra,
    }


class Farm:
    """The API served on loopback for one system, with a client per team."""

    def __init__(self, system: System, stack: ExitStack) -> None:
        self.system = system
        self.app: FastAPI = create_app(system.settings)
        stack.callback(self.app.state.engine.dispose)
        self.base_url = stack.enter_context(serve(self.app))
        self.stack = stack
        self.engine = sa.create_engine(system.settings.database_url)
        stack.callback(self.engine.dispose)

    def team(self, name: str, **limits: int) -> httpx.Client:
        with self.app.state.session_factory() as session:
            key = keys.create_key(session, name).plaintext
            if limits:
                teams.set_limits(session, name, dict(limits))
                session.commit()
        headers = {"Authorization": f"Bearer {key}"}
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=30)
        return self.stack.enter_context(client)

    def running_by_team(self) -> Counter[str]:
        query = sa.text(
            "SELECT teams.name FROM runs JOIN sweeps ON sweeps.id = runs.sweep_id "
            "JOIN teams ON teams.id = sweeps.team_id WHERE runs.status = 'running'"
        )
        with self.engine.connect() as connection:
            return Counter(connection.scalars(query))

    def first_start(self, sweep_id: str) -> datetime:
        query = sa.text("SELECT min(started_at) FROM runs WHERE sweep_id = :id")
        with self.engine.connect() as connection:
            started: datetime = connection.scalar(query, {"id": sweep_id})
        return started

    def starts_between(self, sweep_id: str, since: datetime, until: datetime) -> list[datetime]:
        query = sa.text(
            "SELECT started_at FROM runs WHERE sweep_id = :id "
            "AND started_at > :since AND started_at < :until"
        )
        with self.engine.connect() as connection:
            found = connection.scalars(query, {"id": sweep_id, "since": since, "until": until})
            return list(found)


@pytest.fixture
def farm_for() -> Iterator[Callable[[System], Farm]]:
    with ExitStack() as stack:
        yield lambda system: Farm(system, stack)


def submit(client: httpx.Client, body: dict[str, Any]) -> str:
    response = client.post("/v1/sweeps", json=body)
    assert response.status_code == 201, response.text
    sweep_id: str = response.json()["id"]
    return sweep_id


def wait_until(check: Callable[[], bool], system: System, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"not reached in {timeout} s\n{system.logs()}")


def test_a_high_priority_sweep_behind_a_500_run_sweep_gets_the_next_free_slot(
    system_factory: SystemFactory, farm_for: Callable[[System], Farm]
) -> None:
    system = system_factory(*SLOW_STEPS)
    farm = farm_for(system)
    team = farm.team("render")
    big = submit(team, seeds(1, 500))
    wait_until(lambda: farm.running_by_team()["render"] >= 4, system)  # the pool is full
    urgent = submit(team, seeds(10_000, 2, priority=90))
    accepted = datetime.now(UTC)  # committed: claims from here on can see it
    wait_for_sweep(team, urgent, system, timeout=30)
    first_urgent = farm.first_start(urgent)
    # Claims already under way when it committed may still start a run of the big sweep;
    # none that began after them does.
    in_flight = accepted + timedelta(seconds=0.1)
    late = farm.starts_between(big, in_flight, first_urgent)
    assert late == [], f"urgent started {first_urgent}, accepted {accepted}"
    assert team.post(f"/v1/sweeps/{big}/cancel").status_code == 200


def test_teams_of_weights_1_and_3_hold_running_slots_close_to_1_to_3(
    system_factory: SystemFactory, farm_for: Callable[[System], Farm]
) -> None:
    system = system_factory(*SLOW_STEPS)
    farm = farm_for(system)
    light, heavy = farm.team("light", weight=1), farm.team("heavy", weight=3)
    sweeps = [submit(light, seeds(1, 300)), submit(heavy, seeds(1, 300))]
    wait_until(lambda: farm.running_by_team()["heavy"] > 0, system)
    time.sleep(2)  # the light team's head start drains away as its runs finish
    held: Counter[str] = Counter()
    for _ in range(40):
        held.update(farm.running_by_team())
        time.sleep(0.1)
    share = held["light"] / (held["light"] + held["heavy"])
    # 1:3 is 0.25, but 6 slots split only 1:5 (0.17) or 2:4 (0.33) at any moment, so samples
    # land between those; equal shares would be 0.5. Seen 0.35 once in CI.
    assert 0.15 <= share <= 0.4, held
    for client, sweep_id in zip((light, heavy), sweeps, strict=True):
        assert client.post(f"/v1/sweeps/{sweep_id}/cancel").status_code == 200


def test_a_team_at_its_running_cap_never_exceeds_it(
    system_factory: SystemFactory, farm_for: Callable[[System], Farm]
) -> None:
    system = system_factory(*SLOW_STEPS)
    farm = farm_for(system)
    capped = farm.team("capped", max_running=1)
    sweep_id = submit(capped, seeds(1, 12))
    most = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        most = max(most, farm.running_by_team()["capped"])
        status = capped.get(f"/v1/sweeps/{sweep_id}").json()["status"]
        if status not in ("pending", "running"):
            break
        time.sleep(0.02)
    assert wait_for_sweep(capped, sweep_id, system)["status"] == "succeeded"
    assert most == 1


def test_past_the_queued_cap_the_api_answers_429_with_retry_after(
    system_factory: SystemFactory, farm_for: Callable[[System], Farm]
) -> None:
    system = system_factory(*SLOW_STEPS)
    farm = farm_for(system)
    team = farm.team("queuers", max_queued=100)
    first = submit(team, seeds(1, 80))
    response = team.post("/v1/sweeps", json=seeds(1000, 30))
    assert response.status_code == 429, response.text
    assert int(response.headers["Retry-After"]) > 0
    assert "max_queued" in response.json()["detail"]
    assert team.post(f"/v1/sweeps/{first}/cancel").status_code == 200


def switches(farm: Farm) -> list[Any]:
    """Each run that changed its instance's model, in start order: what a failure shows."""
    query = sa.text(
        "SELECT instance, model_key, index, started_at, attempts FROM runs ORDER BY started_at"
    )
    last: dict[str, str] = {}
    changed = []
    with farm.engine.connect() as connection:
        for row in connection.execute(query):
            if last.get(row.instance) != row.model_key:
                changed.append(tuple(row))
            last[row.instance] = row.model_key
    return changed


# Log events that move a run or a model off its instance: what else a failure shows.
DETOURS = ("run_retrying", "run_lease_lapsed", "instance_health", "run_abandoned", "stalled")


def detours(system: System) -> list[str]:
    return [
        line
        for process in system.processes.values()
        for line in process.log().splitlines()
        if any(event in line for event in DETOURS)
    ]


def test_two_checkpoints_on_two_instances_are_each_loaded_once(
    system_factory: SystemFactory, farm_for: Callable[[System], Farm]
) -> None:
    system = system_factory("--checkpoint-load-ms", "300")
    farm = farm_for(system)
    team = farm.team("loads")
    checkpoints = ["v1-5-pruned-emaonly.safetensors", "dreamshaper_8.safetensors"]
    body = seeds(1, 50)
    body["axes"].insert(0, {"param": "checkpoint", "values": checkpoints})
    sweep_id = submit(team, body)
    assert wait_for_sweep(team, sweep_id, system, timeout=120)["status"] == "succeeded"
    loads = [
        httpx.get(f"{s.base_url}/system_stats", timeout=5).json()["standin"]["checkpoint_loads"]
        for s in system.instances
    ]
    # One load each, also when both instances free up at once: the claims choose their
    # models one at a time, under the team's lock (tests/db plays that race step by step).
    assert sorted(loads) == [1, 1], (loads, switches(farm), detours(system))
