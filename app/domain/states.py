"""The lifecycle states of sweeps and runs, which states are final, and how a sweep's final
state follows from its runs'."""

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


def final_sweep_status(counts: Mapping[RunStatus, int]) -> SweepStatus:
    """succeeded only if every run did; failed if none did; partial otherwise."""
    succeeded, failed = counts.get(RunStatus.SUCCEEDED, 0), counts.get(RunStatus.FAILED, 0)
    if succeeded > 0 and failed == 0 and counts.get(RunStatus.CANCELLED, 0) == 0:
        return SweepStatus.SUCCEEDED
    if succeeded == 0:
        return SweepStatus.FAILED
    return SweepStatus.PARTIAL
