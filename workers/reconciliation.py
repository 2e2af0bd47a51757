"""The periodic reconciler: the database is the record, the broker only carries hints, so
this loop re-sends whatever the database says is owed and nothing is working on.

Each pass: health-checks the instances (out while they do not answer, back when they do),
hands runs with lapsed leases to a resume task, re-sends work for running (never paused)
sweeps that have queued runs but no activity, finalizes drained ones, and re-sends start
and finalize messages that were lost (for example when Redis restarted empty). Every action
it triggers re-checks in a compare-and-set, so running two reconcilers, or one too eagerly,
is harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta

from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError
from app.db.base import utc_now
from app.domain.states import RunStatus, SweepStatus
from app.logs import context as log_context
from app.queue import FINALIZE_SWEEP, RESUME_RUN, START_SWEEP
from app.services import idempotency
from app.settings import InstanceConfig
from app.stores import events, instances, runs, sweeps, webhook_outbox
from workers import idle_sampling
from workers.dispatching import pool_slots, send_work
from workers.finalization import finish_if_done
from workers.runtime import Runtime

log = logging.getLogger(__name__)
HEALTH_TIMEOUT_S = 3.0


def reconcile_once(rt: Runtime) -> None:
    asyncio.run(check_instances(rt))
    idle_sampling.sample(rt)
    now = utc_now()
    quiet_since = now - timedelta(seconds=rt.settings.stall_s)
    _resume_lapsed(rt, now)
    _restart_stalled(rt, now, quiet_since)
    _resend_lost_messages(rt, now, quiet_since)
    _forget_expired_idempotency_keys(rt, now)
    prune_events(rt, now)
    prune_deliveries(rt, now)


async def check_instances(rt: Runtime) -> None:
    configured = rt.settings.instances
    answers = await asyncio.gather(*(_probe(i) for i in configured))
    with rt.sessions() as session:
        instances.sync_instances(session, [(i.url, i.tags) for i in configured])
        known = {i.url: i.healthy for i in instances.all_instances(session)}
        for instance, error in zip(configured, answers, strict=True):
            healthy = error is None
            if known.get(instance.url) != healthy:
                log.info("instance_health url=%s healthy=%s error=%s", instance.url, healthy, error)
            instances.set_health(session, instance.url, healthy, utc_now(), error)
        session.commit()


async def _probe(instance: InstanceConfig) -> str | None:
    """None if the instance answers `/system_stats`, else why not."""
    try:
        async with ComfyClient(instance.url, timeout=HEALTH_TIMEOUT_S) as client:
            await client.system_stats()
    except ComfyError as failure:
        return failure.error.message[:500]
    return None


def _resume_lapsed(rt: Runtime, now: datetime) -> None:
    with rt.sessions() as session:
        lapsed = runs.lapsed_leases(session, now)
    for run_id in lapsed:
        with log_context.bound(run_id=str(run_id)):
            log.info("run_lease_lapsed run=%s", run_id)
            rt.send(RESUME_RUN, str(run_id))


def _restart_stalled(rt: Runtime, now: datetime, quiet_since: datetime) -> None:
    with rt.sessions() as session:
        # A paused sweep gets no work; once its last queued and running runs are gone (its
        # prompts finished, nothing was queued) it is finalized like a running one.
        stalled = [(sweep_id, False) for sweep_id in sweeps.drained(session, SweepStatus.PAUSED)]
        for sweep in sweeps.sweeps_in(session, SweepStatus.RUNNING, updated_before=now):
            counts = sweeps.run_counts(sweep)
            if counts[RunStatus.QUEUED] + counts[RunStatus.RUNNING] == 0:
                stalled.append((sweep.id, False))
                continue
            active = runs.last_activity(session, sweep.id) or sweep.started_at or sweep.created_at
            hinted = sweep.hinted_at or sweep.created_at
            if counts[RunStatus.QUEUED] and active < quiet_since and hinted < quiet_since:
                sweeps.mark_hinted(session, sweep.id, now)
                stalled.append((sweep.id, True))
        session.commit()
    for sweep_id, needs_work in stalled:
        with log_context.bound(sweep_id=str(sweep_id)):
            if needs_work:
                log.info("sweep_stalled sweep=%s resending=work", sweep_id)
                send_work(rt, pool_slots(rt))
            else:
                finish_if_done(rt, sweep_id)


def _resend_lost_messages(rt: Runtime, now: datetime, quiet_since: datetime) -> None:
    with rt.sessions() as session:
        pending = sweeps.sweeps_in(session, SweepStatus.PENDING, updated_before=quiet_since)
        finalizing = sweeps.sweeps_in(session, SweepStatus.FINALIZING, updated_before=quiet_since)
        # Marking touches updated_at, so each sweep is re-sent at most once per stall period
        # even while no worker is there to take the message.
        for sweep in (*pending, *finalizing):
            sweeps.mark_hinted(session, sweep.id, now)
        session.commit()
    for sweep in pending:
        with log_context.bound(sweep_id=str(sweep.id)):
            log.info("sweep_not_started sweep=%s resending=start", sweep.id)
            rt.send(START_SWEEP, str(sweep.id))
    for sweep in finalizing:
        with log_context.bound(sweep_id=str(sweep.id)):
            log.info("sweep_not_finalized sweep=%s resending=finalize", sweep.id)
            rt.send(FINALIZE_SWEEP, str(sweep.id))


def _forget_expired_idempotency_keys(rt: Runtime, now: datetime) -> None:
    with rt.sessions() as session:
        forgotten = idempotency.forget_expired(session, now)
    if forgotten:
        log.info("idempotency_keys_forgotten count=%s", forgotten)


# Events deleted per transaction, and transactions per pass: a backlog (a lowered retention,
# a reconciler that was down) is worked off over a few passes, never in one long delete.
PRUNE_BATCH = 5_000
PRUNE_BATCHES_PER_PASS = 10


def prune_events(rt: Runtime, now: datetime) -> None:
    cutoff = now - timedelta(hours=rt.settings.event_retention_hours)
    pruned = 0
    for _ in range(PRUNE_BATCHES_PER_PASS):
        with rt.sessions() as session:
            deleted = events.prune_older_than(session, cutoff, limit=PRUNE_BATCH)
            session.commit()
        pruned += deleted
        if deleted < PRUNE_BATCH:
            break
    if pruned:
        log.info("events_pruned count=%s before=%s", pruned, cutoff.isoformat())


def prune_deliveries(rt: Runtime, now: datetime) -> None:
    """Ended webhook deliveries are kept as long as the events they carried."""
    cutoff = now - timedelta(hours=rt.settings.event_retention_hours)
    with rt.sessions() as session:
        deleted = webhook_outbox.prune_ended_before(session, cutoff)
        session.commit()
    if deleted:
        log.info("webhook_deliveries_pruned count=%s before=%s", deleted, cutoff.isoformat())


def run_forever(rt: Runtime) -> None:
    log.info("reconciler_started interval_s=%s", rt.settings.reconcile_interval_s)
    while True:
        started = time.monotonic()
        try:
            reconcile_once(rt)
        except Exception:
            # One bad pass (database restarting, say) must not end the loop.
            log.exception("reconcile_failed")
        time.sleep(max(0.0, rt.settings.reconcile_interval_s - (time.monotonic() - started)))
