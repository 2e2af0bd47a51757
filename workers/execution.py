"""Executing one claimed run on its instance and recording the outcome exactly once.

The run's own id is its ComfyUI prompt_id, so after any crash the instance can be asked
about it: finished (in /history) → ingest; still queued or running → follow; unknown →
submit again. The database transaction never stays open while ComfyUI works; a heartbeat
renews the lease and notices a cancel or a takeover.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn
from uuid import UUID

from sqlalchemy.orm import Session

from app.comfy.client import ComfyClient
from app.comfy.errors import ComfyError, RunError, is_retryable
from app.comfy.protocol import HistoryEntry
from app.db.base import utc_now
from app.domain.patching import bound_values, patch_graph, set_output_prefix
from app.domain.states import RunStatus
from app.logs import context as log_context
from app.queue import RESUME_RUN
from app.stores import instances, runs, sweeps
from app.stores.outputs import NewOutput
from app.stores.runs import Claim
from workers import collecting, run_metrics, stopping, tiling
from workers.dispatching import lease_until, send_work
from workers.finalization import send_finalize
from workers.progress import ProgressTap
from workers.runtime import Runtime
from workers.task_logs import claim_fields
from workers.workflows import pinned_workflow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Succeeded:
    outputs: list[NewOutput]


@dataclass(frozen=True)
class Failed:
    error: RunError


@dataclass(frozen=True)
class Abandoned:
    """Cancelled or taken over by another worker: this worker records nothing."""

    reason: str


Outcome = Succeeded | Failed | Abandoned


class _LostClaim(Exception):
    pass


@dataclass(frozen=True)
class Finished:
    """A claim run to its outcome, not recorded yet; `cached`: the nodes ComfyUI answered
    from its cache."""

    claim: Claim
    outcome: Outcome
    cached: tuple[str, ...] = ()


def execute(rt: Runtime, claim: Claim, task_id: str, *, resumed: bool = False) -> None:
    """Run the claim to an outcome and record it."""
    record_finished(rt, follow(rt, claim, task_id, resumed=resumed))


def record_finished(rt: Runtime, finished: Finished) -> None:
    with log_context.bound(**claim_fields(finished.claim)):
        record(rt, finished.claim, finished.outcome, cached=finished.cached)


def follow(rt: Runtime, claim: Claim, task_id: str, *, resumed: bool = False) -> Finished:
    """Run the claim to an outcome, for the caller to record (`record`, or with the slot's
    next claim: `workers.refilling`). A first attempt that was just claimed cannot be known
    to any instance yet; anything else may be, so it is looked up first."""
    with log_context.bound(**claim_fields(claim)):
        graph = _prompt_graph(rt, claim)
        if not resumed:
            run_metrics.observe_started(rt, claim)
        maybe_sent = resumed or claim.attempt > 1
        tap = ProgressTap(rt, claim)
        outcome = rt.comfy.run(_drive(rt, claim, task_id, graph, maybe_sent, tap))
    return Finished(claim, outcome, tap.cached_nodes)


def _prompt_graph(rt: Runtime, claim: Claim) -> dict[str, Any]:
    workflow = pinned_workflow(rt, claim.sweep_id).workflow
    values = bound_values(workflow.contract, claim.assignment)
    graph = patch_graph(workflow.graph, workflow.contract, values)
    return set_output_prefix(graph, f"comfy-sweep/{claim.sweep_id}/{claim.index:06d}")


async def _drive(
    rt: Runtime,
    claim: Claim,
    task_id: str,
    graph: dict[str, Any],
    maybe_sent: bool,
    tap: ProgressTap,
) -> Outcome:
    prompt_id = str(claim.run_id)
    client = rt.comfy.client(claim.instance)
    settings = rt.settings
    timeout, unreachable, stall = (
        settings.run_timeout_s,
        settings.unreachable_s,
        settings.prompt_stall_s,
    )
    try:
        if maybe_sent and await _known(client, prompt_id):
            # Submitted earlier (by a worker that died, or an attempt before this one) on a
            # channel whose id is not known here: ComfyUI sends the prompt's events there, so
            # it is followed by polling.
            following = client.wait(
                prompt_id,
                client_id=None,
                timeout=timeout,
                unreachable_after=unreachable,
                stall_after=stall,
                on_frame=tap,
            )
        else:
            # On the process's socket to the instance, which it keeps open between runs.
            following = client.submit_and_wait(
                graph,
                prompt_id=prompt_id,
                channel=await rt.comfy.channel(claim.instance),
                timeout=timeout,
                unreachable_after=unreachable,
                stall_after=stall,
                on_frame=tap,
            )
        entry = await _with_heartbeat(rt, client, claim, task_id, following)
        # From here on this coroutine is all the loop runs (the heartbeat stopped with the
        # follow): blocking calls are made in place, as a thread hop would only add CPU.
        if entry.error is not None:
            # A retry of the run (`POST .../retry`) resubmits under the same prompt id: it
            # must not find this entry on the instance and take it for its own result.
            await _forget(client, prompt_id)
            return Failed(entry.error)
        collected = await collecting.collect_outputs(rt, client, claim, entry)
        # Before the run is recorded: the last one's record may start the finalizer.
        tiling.write_run_tile(rt, claim, collected.outputs, collected.bodies)
        await rt.comfy.forget(claim.instance, prompt_id)
        return Succeeded(collected.outputs)
    except ComfyError as failure:
        if failure.error.details == "stalled":
            # Interrupted, so its history entry says so: a retry on this instance must not
            # find it and take it for this attempt's result.
            await _forget(client, prompt_id)
        return Failed(failure.error)
    except _LostClaim as lost:
        return Abandoned(str(lost))


async def _known(client: ComfyClient, prompt_id: str) -> bool:
    """Finished, queued or running on the instance: ComfyUI does not deduplicate prompt ids,
    so after a crash it is asked before the prompt is submitted again."""
    if await client.history(prompt_id) is not None:
        return True
    return (await client.queue()).holds(prompt_id)


async def _with_heartbeat(
    rt: Runtime,
    client: ComfyClient,
    claim: Claim,
    task_id: str,
    following: Coroutine[Any, Any, HistoryEntry],
) -> HistoryEntry:
    """Follow the prompt while renewing the lease; give up if the claim was lost (`_let_go`),
    hand the run back (the prompt left running) if the worker is shutting down."""
    loop = asyncio.get_running_loop()
    waiting = asyncio.create_task(following)
    with stopping.notice.watch() as stop:
        stopped = asyncio.create_task(stop.wait())
        watched: set[asyncio.Future[Any]] = {waiting, stopped}
        hand_back_at: float | None = None
        try:
            while True:
                timeout = rt.settings.heartbeat_s
                if hand_back_at is not None:
                    timeout = min(timeout, max(0.0, hand_back_at - loop.time()))
                done, _ = await asyncio.wait(
                    watched, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                if waiting in done:
                    return waiting.result()
                if stopped in done:
                    watched.discard(stopped)
                    grace = stopping.SHUTDOWN_GRACE_S
                    log.info("worker_stopping run=%s grace_s=%s", claim.run_id, grace)
                    hand_back_at = loop.time() + grace
                if hand_back_at is not None and loop.time() >= hand_back_at:
                    if await asyncio.to_thread(_hand_back, rt, claim, task_id):
                        raise _LostClaim("handed back: the worker is shutting down")
                elif await asyncio.to_thread(_renew, rt, claim, task_id):
                    continue
                await _let_go(rt, client, claim)
        finally:
            waiting.cancel()
            stopped.cancel()


async def _let_go(rt: Runtime, client: ComfyClient, claim: Claim) -> NoReturn:
    """The claim is lost: withdraw the prompt only if the run was cancelled. A run taken over
    (its lease lapsed while this worker was slow, not dead) is followed by its new owner under
    the same prompt id, and one recorded since may be running again under it: withdrawing
    would make that owner find its prompt lost and retry a healthy run."""
    if await asyncio.to_thread(_cancelled, rt, claim):
        await _withdraw(client, str(claim.run_id))
        raise _LostClaim("cancelled")
    raise _LostClaim("taken over by another worker")


def _cancelled(rt: Runtime, claim: Claim) -> bool:
    with rt.sessions() as session:
        return runs.run_status(session, claim.run_id) is RunStatus.CANCELLED


def _hand_back(rt: Runtime, claim: Claim, task_id: str) -> bool:
    """Release the run with its prompt still on the instance, and have another worker
    follow it now rather than after the lease would have lapsed."""
    with rt.sessions() as session:
        released = runs.hand_back(session, claim, task_id, utc_now())
        session.commit()
    if released:
        log.info("run_handed_back run=%s instance=%s", claim.run_id, claim.instance)
        rt.send(RESUME_RUN, str(claim.run_id))
    return released


def _renew(rt: Runtime, claim: Claim, task_id: str) -> bool:
    with rt.sessions() as session:
        renewed = runs.renew_lease(session, claim, task_id, lease_until(rt))
        session.commit()
    return renewed


async def _withdraw(client: ComfyClient, prompt_id: str) -> None:
    """Take our prompt off the instance: out of its queue, or interrupted if it runs."""
    await client.remove_from_queue([prompt_id])
    await client.interrupt(prompt_id)
    await _forget(client, prompt_id)


async def _forget(client: ComfyClient, prompt_id: str) -> None:
    # A withdrawn prompt's entry goes at once; finished ones go in batches (rt.comfy.forget).
    try:
        await client.delete_history([prompt_id])
    except ComfyError as failure:
        log.warning("history_delete_failed prompt=%s error=%s", prompt_id, failure.error.message)


def record(rt: Runtime, claim: Claim, outcome: Outcome, cached: Sequence[str] = ()) -> None:
    """Write the outcome; a stale or duplicate report changes nothing. `cached`: the nodes
    ComfyUI answered from its cache, recorded with the outcome rather than in a transaction
    of their own."""
    if isinstance(outcome, Abandoned):
        log.info("run_abandoned run=%s reason=%s", claim.run_id, outcome.reason)
        return
    with rt.sessions() as session:
        written = write_outcome(rt, session, claim, outcome, cached)
        session.commit()
    after_record(rt, claim, outcome, written)


@dataclass(frozen=True)
class Written:
    """What recording an outcome did: `recorded` (False for a stale or duplicate report),
    whether the run goes back to the queue to be retried, and whether it was its sweep's
    last (the sweep is finalizing now)."""

    recorded: bool
    retry: bool
    drained: bool


def write_outcome(
    rt: Runtime,
    session: Session,
    claim: Claim,
    outcome: Succeeded | Failed,
    cached: Sequence[str] = (),
) -> Written:
    """`record`'s writes, in the caller's transaction; `after_record` once it committed."""
    retry = isinstance(outcome, Failed) and _should_retry(rt, claim, outcome.error)
    # The instance row before the run and the sweep row, the order claimers lock them
    # in (`take_work`); the other way round the two deadlock. A success's record keeps
    # that order in its one statement (`runs.record_succeeded`).
    if isinstance(outcome, Succeeded):
        recorded = runs.record_succeeded(session, claim, outcome.outputs, cached)
    else:
        _record_failure_on_instance(rt, session, claim, outcome.error, retry)
        error = outcome.error.to_json()
        if retry:
            recorded = runs.requeue_run(session, claim, error, cached=cached)
        else:
            recorded = runs.finish_run(session, claim, RunStatus.FAILED, error, cached=cached)
    # In the same transaction: the sweep row is locked already, and a sweep's last run
    # costs no second one to find out that it was the last.
    drained = not retry and sweeps.start_finalizing_if_drained(session, claim.sweep_id)
    return Written(recorded, retry, drained)


def after_record(rt: Runtime, claim: Claim, outcome: Succeeded | Failed, written: Written) -> None:
    """What follows the commit of `write_outcome`."""
    if written.recorded:  # a stale or duplicate report is not counted twice
        run_metrics.observe_recorded(rt, claim, _outcome_label(outcome, written.retry))
    _log_outcome(claim, outcome, written.retry)
    if written.retry:
        # For the run once its backoff is over, should every slot's task have ended by then.
        send_work(rt, 1, countdown=_backoff(claim.attempt))
    elif written.drained:
        send_finalize(rt, claim.sweep_id)


def _record_failure_on_instance(
    rt: Runtime, session: Session, claim: Claim, error: RunError, retry: bool
) -> None:
    """What a failure says of the instance: a transport failure extends its failure streak
    (benching it after INSTANCE_BENCH_AFTER in a row), and takes it out of the pool until
    the reconciler's next health check if retried. (A success ends the streak.)"""
    if error.kind != "transport":
        return
    now = utc_now()
    if retry:
        instances.set_health(session, claim.instance, False, now, error.message)
    settings = rt.settings
    bench = timedelta(seconds=settings.instance_bench_s)
    until = instances.record_transport_failure(
        session, claim.instance, now, settings.instance_bench_after, bench
    )
    if until is not None:
        log.warning("instance_benched url=%s until=%s", claim.instance, until.isoformat())


def _outcome_label(outcome: Succeeded | Failed, retry: bool) -> str:
    if isinstance(outcome, Succeeded):
        return "succeeded"
    return "retried" if retry else "failed"


def _should_retry(rt: Runtime, claim: Claim, error: RunError) -> bool:
    return is_retryable(error) and claim.attempt < rt.settings.max_attempts


def _backoff(attempt: int) -> float:
    return float(min(30, 2 ** (attempt - 1)))


def _log_outcome(claim: Claim, outcome: Outcome, retry: bool) -> None:
    if isinstance(outcome, Succeeded):
        log.info("run_succeeded run=%s outputs=%d", claim.run_id, len(outcome.outputs))
    elif isinstance(outcome, Failed):
        verdict = "run_retrying" if retry else "run_failed"
        log.info(
            "%s run=%s attempt=%d kind=%s node=%s message=%s",
            verdict,
            claim.run_id,
            claim.attempt,
            outcome.error.kind,
            outcome.error.node_id,
            outcome.error.message,
        )


def resume(rt: Runtime, run_id: UUID, task_id: str) -> bool:
    """Take over a running run whose worker stopped renewing its lease, and see it through;
    False if it was not there to take over."""
    with rt.sessions() as session:
        now = utc_now()
        claim = runs.take_over(session, run_id, task_id, now, lease_until(rt, now))
        session.commit()
    if claim is None:
        return False
    log.info("run_taken_over run=%s instance=%s", run_id, claim.instance)
    execute(rt, claim, task_id, resumed=True)
    return True
