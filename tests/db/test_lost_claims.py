"""A worker that finds its claim gone while following a prompt (`execution._with_heartbeat`),
on a real Postgres: it withdraws the prompt only if the run was cancelled. A run taken over
after its lease lapsed (the worker was slow, not dead) is followed by its new owner under the
same prompt id, so the old owner must leave the prompt alone: withdrawing it made the new
owner find it lost and retry a healthy run (seen on a loaded CI machine)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import cast

import pytest
import sqlalchemy as sa
from celery import Celery

from app.comfy.client import ComfyClient
from app.comfy.protocol import HistoryEntry
from app.db.base import utc_now
from app.db.models import Run
from app.domain.states import RunStatus
from app.settings import Settings
from app.stores import instances, runs
from app.stores.runs import Claim
from tests.conftest import REDIS_URL, scratch_database
from tests.support.sweeps import running_sweep
from workers import dispatching, execution
from workers.runtime import Runtime, build_runtime

INSTANCE = "http://gpu0:8188"


@dataclass
class RecordingClient:
    """Stands in for the instance's client: the calls that would take a prompt off it."""

    calls: list[tuple[str, list[str]]] = field(default_factory=list)

    async def remove_from_queue(self, prompt_ids: Sequence[str]) -> None:
        self.calls.append(("remove_from_queue", list(prompt_ids)))

    async def interrupt(self, prompt_id: str) -> None:
        self.calls.append(("interrupt", [prompt_id]))

    async def delete_history(self, prompt_ids: Sequence[str]) -> None:
        self.calls.append(("delete_history", list(prompt_ids)))


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    with scratch_database("lost") as url:
        yield url


@pytest.fixture
def runtime(database_url: str) -> Iterator[Runtime]:
    """Heartbeats every 50 ms, so a lost claim is noticed at once; nothing else running."""
    settings = Settings(
        database_url=database_url,
        comfy_instances=INSTANCE,
        instance_slots=1,
        redis_url=REDIS_URL,
        heartbeat_s=0.05,
        lease_s=30,
    )
    rt = build_runtime(settings, cast(Celery, object()))
    with rt.sessions() as session:
        instances.sync_instances(session, [(INSTANCE, [])])
        session.execute(sa.update(Run).values(status=RunStatus.CANCELLED))
        session.commit()
    yield rt
    rt.sessions.kw["bind"].dispose()


def claimed_run(rt: Runtime) -> Claim:
    running_sweep(rt, 1)
    work = dispatching.take_work(rt, "task-a", maybe_held=False)
    assert work is not None
    return work.claim


async def never_finishes() -> HistoryEntry:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def follow_until_lost(rt: Runtime, claim: Claim, client: RecordingClient) -> str:
    """Follow a prompt that never finishes as task-a; the reason the claim was given up."""
    following = execution._with_heartbeat(
        rt, cast(ComfyClient, client), claim, "task-a", never_finishes()
    )
    with pytest.raises(execution._LostClaim) as lost:
        asyncio.run(asyncio.wait_for(following, timeout=10))
    return str(lost.value)


def test_a_run_taken_over_is_left_running_for_its_new_owner(runtime: Runtime) -> None:
    claim = claimed_run(runtime)
    # task-a's lease lapsed while it was slow; the reconciler's resume gave it to task-b.
    with runtime.sessions() as session:
        lapsed = utc_now() - timedelta(seconds=1)
        lapse = sa.update(Run).where(Run.id == claim.run_id).values(lease_expires_at=lapsed)
        session.execute(lapse)
        now = utc_now()
        taken = runs.take_over(session, claim.run_id, "task-b", now, now + timedelta(seconds=30))
        session.commit()
    assert taken is not None

    client = RecordingClient()
    reason = follow_until_lost(runtime, claim, client)

    assert client.calls == []  # task-b follows this very prompt
    assert reason == "taken over by another worker"
    with runtime.sessions() as session:
        assert runs.run_status(session, claim.run_id) is RunStatus.RUNNING


def test_a_cancelled_run_has_its_prompt_withdrawn(runtime: Runtime) -> None:
    claim = claimed_run(runtime)
    with runtime.sessions() as session:
        runs.cancel_unfinished(session, claim.sweep_id)
        session.commit()

    client = RecordingClient()
    assert follow_until_lost(runtime, claim, client) == "cancelled"

    prompt = [str(claim.run_id)]
    assert client.calls == [
        ("remove_from_queue", prompt),
        ("interrupt", prompt),
        ("delete_history", prompt),
    ]


def test_a_held_run_keeps_its_lease_while_it_is_followed(runtime: Runtime) -> None:
    """The control: nobody took the claim, so the heartbeats renew it and nothing is sent."""
    claim = claimed_run(runtime)
    client = RecordingClient()
    entry = cast(HistoryEntry, object())

    async def finishes_after_a_few_heartbeats() -> HistoryEntry:
        await asyncio.sleep(0.3)
        return entry

    following = execution._with_heartbeat(
        runtime, cast(ComfyClient, client), claim, "task-a", finishes_after_a_few_heartbeats()
    )
    claimed_until = lease_of(runtime, claim)
    assert asyncio.run(following) is entry
    assert client.calls == []
    assert lease_of(runtime, claim) > claimed_until


def lease_of(rt: Runtime, claim: Claim) -> datetime:
    with rt.sessions() as session:
        until = session.scalar(sa.select(Run.lease_expires_at).where(Run.id == claim.run_id))
    assert until is not None
    return until
