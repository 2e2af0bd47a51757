"""A task keeps the instance slot it fills: once its run is recorded it claims the next one
itself, so a run costs no Celery message (a message's send and its round through the
worker's consumer cost more CPU than the claim).

At any moment such a task holds at most one run, claimed under its own task id, so its
message delivered again after its worker died finds that run (`runs.claimed_by`), resumes it
and goes on. The task ends when there is nothing to claim, when its worker is stopping, or
after KEEP_SLOT_S. In the last two cases work may remain, so it hands the slot on in one
fresh `work` message (taken by another worker, if this one is stopping) before its own is
acknowledged. It closes its sockets to the instances then (`ComfySession.hang_up`): they
are for the runs it takes in a row, not for an idle process.
"""

from __future__ import annotations

from time import monotonic
from uuid import UUID

from app.queue import WORK
from workers import execution, refilling, stopping
from workers.dispatching import Work, take_work
from workers.runtime import Runtime

# Bounds how long a message stays unacknowledged, far inside Redis's visibility timeout
# (Settings.visibility_timeout_s), and how long the queue's other messages (a sweep to start
# or finalize, a run to resume) wait for a process on a worker that has none to spare. One
# message per slot this often costs nothing next to one a run.
KEEP_SLOT_S = 20.0


def fill_slot(rt: Runtime, task_id: str, maybe_held: bool) -> None:
    """A `work` message: the run it holds already (`maybe_held`: it may be delivered again),
    else the best queued run; then the next ones while it keeps the slot."""
    ends_at = monotonic() + KEEP_SLOT_S
    try:
        _keep(rt, task_id, take_work(rt, task_id, maybe_held), ends_at)
    finally:
        rt.comfy.hang_up()


def resume_then_fill(rt: Runtime, run_id: UUID, task_id: str, maybe_held: bool) -> None:
    """A `resume_run` message: take over the run and see it through, then keep its slot."""
    ends_at = monotonic() + KEEP_SLOT_S
    try:
        if execution.resume(rt, run_id, task_id):
            _keep(rt, task_id, _next_work(rt, task_id, ends_at), ends_at)
        elif maybe_held:
            # Delivered again: the task that died kept a slot, perhaps holding a later run.
            _keep(rt, task_id, take_work(rt, task_id), ends_at)
    finally:
        rt.comfy.hang_up()


def _keep(rt: Runtime, task_id: str, work: Work | None, ends_at: float) -> None:
    while work is not None:
        finished = execution.follow(rt, work.claim, task_id, resumed=work.resumed)
        if _slot_given_up(rt, ends_at):
            execution.record_finished(rt, finished)
            rt.send(WORK)
            return
        # On the instance the run freed if it can take one, in the transaction that records
        # it if that needs no wait. The run recorded is no longer this task's: none is
        # looked for.
        work = refilling.record_then_take(rt, task_id, finished)


def _next_work(rt: Runtime, task_id: str, ends_at: float) -> Work | None:
    """The next run for the slot; None, with the slot handed on, once the worker is stopping
    or the time is up. The run just recorded is no longer this task's: none is looked for."""
    if _slot_given_up(rt, ends_at):
        rt.send(WORK)
        return None
    return take_work(rt, task_id, maybe_held=False)


def _slot_given_up(rt: Runtime, ends_at: float) -> bool:
    return stopping.notice.requested or monotonic() >= ends_at
