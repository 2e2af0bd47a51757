"""Which instance a run may be claimed for: tags that cover its sweep's, not drained, not
benched. On Postgres and on SQLite, through the worker's own claim (`take_work`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from uuid import uuid4

import pytest
import sqlalchemy as sa

from app.db.base import utc_now
from app.db.models import Instance, Run
from app.domain.states import RunStatus
from app.queue import make_celery
from app.settings import Settings
from app.stores import instances
from app.stores.instance_streaks import RESET_STREAK
from tests.conftest import REDIS_URL
from tests.support.claim_order import trying_first
from tests.support.databases import BACKENDS, runtime_on
from tests.support.sweeps import running_sweep
from workers.dispatching import take_work
from workers.runtime import Runtime, build_runtime

PLAIN, SDXL, BIG = "http://plain:8188", "http://sdxl:8188", "http://big:8188"
POOL = {PLAIN: (), SDXL: ("sdxl",), BIG: ("48gb", "sdxl")}
SLOTS = 2


@pytest.fixture(params=BACKENDS)
def runtime(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Runtime]:
    with runtime_on(request.param, tmp_path, "eligibility", _runtime) as rt:
        yield rt


def _runtime(url: str) -> Runtime:
    instances_setting = ",".join(f"{u}#{'+'.join(t)}" if t else u for u, t in POOL.items())
    settings = Settings(
        database_url=url,
        comfy_instances=instances_setting,
        instance_slots=SLOTS,
        redis_url=REDIS_URL,
    )
    rt = build_runtime(settings, make_celery(settings))
    with rt.sessions() as session:
        instances.sync_instances(session, list(POOL.items()))
        session.commit()
    return rt


def claim_all(rt: Runtime) -> Counter[str]:
    """Claim until nothing more is given; how many runs went to each instance."""
    got: Counter[str] = Counter()
    while (work := take_work(rt, f"task-{uuid4()}")) is not None:
        got[work.claim.instance] += 1
    return got


def set_instance(rt: Runtime, url: str, **values: object) -> None:
    with rt.sessions() as session:
        session.execute(sa.update(Instance).where(Instance.url == url).values(**values))
        session.commit()


def test_runs_needing_a_tag_go_only_to_instances_that_have_it(runtime: Runtime) -> None:
    running_sweep(runtime, 10, required_tags="sdxl")
    assert claim_all(runtime) == {SDXL: SLOTS, BIG: SLOTS}


def test_an_instance_with_nothing_waiting_for_its_tags_does_not_stop_the_claim(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The untagged instance, tried first, has nothing to take: the claim goes on to the
    instances whose tags the sweep's runs need rather than conclude that nothing waits."""

    trying_first(monkeypatch, iter([PLAIN]))
    running_sweep(runtime, 1, required_tags="sdxl")
    work = take_work(runtime, f"task-{uuid4()}")
    assert work is not None
    assert work.claim.instance in (SDXL, BIG)


def test_runs_needing_two_tags_go_only_to_the_instance_with_both(runtime: Runtime) -> None:
    running_sweep(runtime, 10, required_tags="48gb+sdxl")
    assert claim_all(runtime) == {BIG: SLOTS}


def test_runs_needing_nothing_go_everywhere(runtime: Runtime) -> None:
    running_sweep(runtime, 10)
    assert claim_all(runtime) == dict.fromkeys(POOL, SLOTS)


def test_a_drained_instance_gets_nothing_until_undrained(runtime: Runtime) -> None:
    running_sweep(runtime, 10)
    with runtime.sessions() as session:
        assert instances.set_drained(session, SDXL, True)
        session.commit()
    assert claim_all(runtime) == {PLAIN: SLOTS, BIG: SLOTS}
    with runtime.sessions() as session:
        instances.set_drained(session, SDXL, False)
        session.commit()
    assert claim_all(runtime) == {SDXL: SLOTS}


def test_transport_failures_in_a_row_bench_an_instance_and_a_success_resets(
    runtime: Runtime,
) -> None:
    now = utc_now()
    bench = timedelta(seconds=120)
    with runtime.sessions() as session:
        assert instances.record_transport_failure(session, PLAIN, now, 3, bench) is None
        # A success there (the statement `runs.record_succeeded` runs): the streak starts again.
        session.execute(RESET_STREAK, {"at_url": PLAIN})
        assert instances.record_transport_failure(session, PLAIN, now, 3, bench) is None
        assert instances.record_transport_failure(session, PLAIN, now, 3, bench) is None
        until = instances.record_transport_failure(session, PLAIN, now, 3, bench)
        session.commit()
    assert until == now + bench
    running_sweep(runtime, 10)
    assert claim_all(runtime) == {SDXL: SLOTS, BIG: SLOTS}
    # The cool-down over, it takes runs again.
    set_instance(runtime, PLAIN, benched_until=utc_now() - timedelta(seconds=1))
    assert claim_all(runtime) == {PLAIN: SLOTS}


def test_a_run_of_a_sweep_no_instance_fits_stays_queued(runtime: Runtime) -> None:
    sweep_id = running_sweep(runtime, 1, required_tags="h100")
    assert claim_all(runtime) == {}
    with runtime.sessions() as session:
        status = session.scalar(sa.select(Run.status).where(Run.sweep_id == sweep_id))
    assert status == RunStatus.QUEUED
