"""The lifecycle states of sweeps and runs, which moves between them are allowed, which states
are final, and how a sweep's final state follows from its runs'.

The tables here are the state machine the stores' compare-and-set updates follow: each store
transition names the states it may start from with one of the sets below, so a move the
table does not allow cannot be written. tests/db/test_state_machine.py checks every status
change it observes against them.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class SweepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    # Held by a producer: none of its queued runs starts until it is resumed; the prompts
    # running when it was paused finish and are recorded as usual.
    PAUSED = "paused"
    FINALIZING = "finalizing"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
# A run that reached an outcome by being executed; what a sweep's progress counts. Cancelled
# runs are final too but never ran, so a cancelled sweep must not read as complete.
EXECUTED_RUN_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED})
FINAL_SWEEP_STATUSES = frozenset(
    {SweepStatus.SUCCEEDED, SweepStatus.PARTIAL, SweepStatus.FAILED, SweepStatus.CANCELLED}
)

# Where each sweep move may start from. A sweep moves only by these:
# start (pending → running, by its start message or its first claim),
# pause (→ paused), resume (paused → running, or pending if it never started),
# cancel (→ cancelled), drain (→ finalizing once no run is queued or running: a paused sweep
# with queued runs stays paused), finish (finalizing → its final status), reopen (an ended
# sweep → running, when a retry or an extension queued runs in it again).
STARTABLE = frozenset({SweepStatus.PENDING})
PAUSABLE = frozenset({SweepStatus.PENDING, SweepStatus.RUNNING})
RESUMABLE = frozenset({SweepStatus.PAUSED})
CANCELLABLE = frozenset({SweepStatus.PENDING, SweepStatus.RUNNING, SweepStatus.PAUSED})
DRAINABLE = frozenset({SweepStatus.RUNNING, SweepStatus.PAUSED})
FINISHABLE = frozenset({SweepStatus.FINALIZING})
REOPENABLE = FINAL_SWEEP_STATUSES
# Whose queued runs claims may take (`active_sweeps.active`). A pending sweep's too: the claim
# that takes its first run starts it, so a sweep submitted to a busy farm is served at the
# next free slot, not after a worker process is free to handle its start message.
CLAIMABLE = frozenset({SweepStatus.PENDING, SweepStatus.RUNNING})

SWEEP_TRANSITIONS: frozenset[tuple[SweepStatus, SweepStatus]] = frozenset(
    {
        *((source, SweepStatus.RUNNING) for source in STARTABLE),
        *((source, SweepStatus.PAUSED) for source in PAUSABLE),
        *((source, target) for source in RESUMABLE for target in CLAIMABLE),
        *((source, SweepStatus.CANCELLED) for source in CANCELLABLE),
        *((source, SweepStatus.FINALIZING) for source in DRAINABLE),
        *(
            (source, target)
            for source in FINISHABLE
            for target in (SweepStatus.SUCCEEDED, SweepStatus.PARTIAL, SweepStatus.FAILED)
        ),
        *((source, SweepStatus.RUNNING) for source in REOPENABLE),
    }
)

# A run moves by: claim (queued → running, one more attempt), finish (running → succeeded |
# failed), requeue (running → queued, the attempt failed in a way worth another), cancel
# (queued | running → cancelled, with its sweep), retry (failed | cancelled → queued, by
# POST /v1/sweeps/{id}/retry; a succeeded run never runs again).
RUN_TRANSITIONS: frozenset[tuple[RunStatus, RunStatus]] = frozenset(
    {
        (RunStatus.QUEUED, RunStatus.RUNNING),
        (RunStatus.RUNNING, RunStatus.SUCCEEDED),
        (RunStatus.RUNNING, RunStatus.FAILED),
        (RunStatus.RUNNING, RunStatus.QUEUED),
        (RunStatus.QUEUED, RunStatus.CANCELLED),
        (RunStatus.RUNNING, RunStatus.CANCELLED),
        (RunStatus.FAILED, RunStatus.QUEUED),
        (RunStatus.CANCELLED, RunStatus.QUEUED),
    }
)


def sweep_may_move(source: SweepStatus, target: SweepStatus) -> bool:
    return (source, target) in SWEEP_TRANSITIONS


def run_may_move(source: RunStatus, target: RunStatus) -> bool:
    return (source, target) in RUN_TRANSITIONS


def resumed_status(started: bool) -> SweepStatus:
    """Where resuming a paused sweep leads: back to running, or to pending if it was paused
    before it started (submitted paused), so it starts as any new sweep does."""
    return SweepStatus.RUNNING if started else SweepStatus.PENDING


def final_sweep_status(counts: Mapping[RunStatus, int]) -> SweepStatus:
    """succeeded only if every run did; failed if none did; partial otherwise."""
    succeeded, failed = counts.get(RunStatus.SUCCEEDED, 0), counts.get(RunStatus.FAILED, 0)
    if succeeded > 0 and failed == 0 and counts.get(RunStatus.CANCELLED, 0) == 0:
        return SweepStatus.SUCCEEDED
    if succeeded == 0:
        return SweepStatus.FAILED
    return SweepStatus.PARTIAL
