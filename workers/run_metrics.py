"""What a worker observes of a run for `/metrics` (`app.metrics.observed`): its queue wait
when it starts, its outcome and duration when recorded. A few in-memory updates per run:
the workflow's name comes from the in-process cache of pinned versions, and the times came
back with the claim, so no statement is added."""

from __future__ import annotations

import logging

from app.db.base import utc_now
from app.metrics import observed
from app.stores.runs import Claim
from workers.runtime import Runtime
from workers.workflows import pinned_workflow

log = logging.getLogger(__name__)

UNKNOWN_WORKFLOW = "unknown"


def workflow_name(rt: Runtime, claim: Claim) -> str:
    try:
        return pinned_workflow(rt, claim.sweep_id).workflow.name
    except LookupError:  # the sweep was deleted meanwhile: still counted, under no name
        return UNKNOWN_WORKFLOW


def observe_started(rt: Runtime, claim: Claim) -> None:
    if claim.queued_at is not None and claim.started_at is not None:
        name = workflow_name(rt, claim)
        observed.observe_start(name, claim.instance, claim.queued_at, claim.started_at)


def observe_recorded(rt: Runtime, claim: Claim, outcome: str) -> None:
    """`outcome`: succeeded, failed, or retried (queued again)."""
    name = workflow_name(rt, claim)
    observed.observe_outcome(name, claim.instance, outcome, claim.started_at, utc_now())
