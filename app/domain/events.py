"""What the event log records: one event per state change of a sweep or a run.

An event is written in the transaction of the change it describes (`app.stores.events`), so
the log never tells of a change that did not happen nor misses one that did. Its id grows in
commit order: a reader that has seen every id up to N has seen every event committed before
N's. Streams (`GET /v1/events`), webhooks and the CLI all read this one log.

Submitting a sweep records `sweep.queued` with the number of runs rather than one
`run.queued` per run (a 10,000-run sweep would otherwise write 10,000 rows at submission);
`run.queued` marks a run queued *again* (a failed attempt requeued, a retry). Likewise
cancelling a sweep records `sweep.cancelled` with how many queued runs it cancelled, and one
`run.cancelled` only for a run that was running.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID


class EventType(StrEnum):
    # data: runs, workflow, priority
    SWEEP_QUEUED = "sweep.queued"
    SWEEP_STARTED = "sweep.started"
    SWEEP_PAUSED = "sweep.paused"
    SWEEP_RESUMED = "sweep.resumed"
    # data: runs_cancelled (queued runs that will never start)
    SWEEP_CANCELLED = "sweep.cancelled"
    # An ended sweep runs again because a retry or an extension queued runs in it; data: runs
    SWEEP_REOPENED = "sweep.reopened"
    SWEEP_FINALIZING = "sweep.finalizing"
    # The sweep reached a final status; data: status, counts. Always the last event of a
    # sweep (until a reopen), whatever the status, cancelled included.
    SWEEP_FINISHED = "sweep.finished"
    # data: pages (how many grid pages), url
    GRID_READY = "grid.ready"
    # Queued again; data: reason ("requeued" after a failed attempt, "retry", "extend")
    RUN_QUEUED = "run.queued"
    # data: instance, prompt_id, attempt
    RUN_STARTED = "run.started"
    # Sampled, a few per second per run at most; data: node, value, max
    RUN_PROGRESS = "run.progress"
    # data: nodes (ids ComfyUI answered from its cache)
    RUN_CACHED = "run.cached"
    # data: outputs (file names)
    RUN_SUCCEEDED = "run.succeeded"
    # data: node_id, node_type, message
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"


# The event after which a sweep's stream ends.
STREAM_END_TYPES = frozenset({EventType.SWEEP_FINISHED})


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event to record; `data` must be JSON-safe (ids as strings)."""

    type: EventType
    team_id: UUID
    sweep_id: UUID
    run_index: int | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A recorded event with its place in the log."""

    id: int
    created_at: datetime
    type: EventType
    team_id: UUID
    sweep_id: UUID
    run_index: int | None
    data: Mapping[str, Any]
