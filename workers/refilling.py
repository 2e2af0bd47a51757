"""Recording a succeeded run and handing its instance slot to the sweep's next run in one
transaction: one transaction a run instead of two (a record, then a claim), each with its
BEGIN, its events' insert and its COMMIT, and no team lock.

The transaction locks the instance's row first, as a claim does, then records the run (its
row, then its sweep's), then starts the next run of the same sweep and model on the same
instance, if fair share serves that sweep first (`claims.handover_run`). The slot passes
from one run to the other in one commit: no claimer ever sees it free, and the team's
running count does not move. Where a claim might choose otherwise (another sweep's turn,
another model, nothing of this one left), the record commits alone and the slot is claimed
as before (`dispatching.take_work`).
"""

from __future__ import annotations

from app.db.base import utc_now
from app.logs import context as log_context
from app.stores import instances
from workers import execution
from workers.dispatching import Work, hand_over, log_taken, take_work
from workers.execution import Finished, Succeeded
from workers.runtime import Runtime
from workers.task_logs import claim_fields


def record_then_take(rt: Runtime, task_id: str, finished: Finished) -> Work | None:
    """Record the finished run and take the slot's next run: handed over in the same
    transaction where it can be, else claimed in one of its own."""
    claim, outcome = finished.claim, finished.outcome
    if not isinstance(outcome, Succeeded):
        execution.record_finished(rt, finished)
        return take_work(rt, task_id, maybe_held=False, freed=claim.instance)
    with log_context.bound(**claim_fields(claim)):
        with rt.sessions() as session:
            # Before the run's row and the sweep's, the order claims lock them in.
            instance = instances.lock_serving(session, claim.instance, utc_now())
            written = execution.write_outcome(rt, session, claim, outcome, finished.cached)
            following = None
            # A stale report's slot is not this task's to hand over.
            if instance is not None and written.recorded and not written.drained:
                following = hand_over(session, rt, task_id, claim, instance)
            session.commit()
        execution.after_record(rt, claim, outcome, written)
    if following is None:
        return take_work(rt, task_id, maybe_held=False, freed=claim.instance)
    work = Work(following, resumed=False)
    log_taken(work)
    return work
