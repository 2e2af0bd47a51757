"""What each state change writes to the event log (`app.stores.events`): the stores'
compare-and-set transitions call these once the change applied, in its transaction, so every
caller of a transition is covered once and a change that did not happen records nothing.

The event types and what their `data` holds are defined in `app.domain.events`; this module
only turns what a transition knows into those payloads (JSON-safe: ids and times as strings).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.orm import Session

from app.domain.events import EventType, NewEvent
from app.domain.states import FINAL_SWEEP_STATUSES, RESUMABLE, RunStatus, SweepStatus
from app.stores import events

# Where each sweep move leads, by its target status; a move to running or pending from a
# paused sweep is a resume (see `sweep_moved`).
_SWEEP_TARGETS: Mapping[SweepStatus, EventType] = {
    SweepStatus.RUNNING: EventType.SWEEP_STARTED,
    SweepStatus.PAUSED: EventType.SWEEP_PAUSED,
    SweepStatus.FINALIZING: EventType.SWEEP_FINALIZING,
    SweepStatus.CANCELLED: EventType.SWEEP_CANCELLED,
}


def counts_data(counts: Mapping[RunStatus, int]) -> dict[str, int]:
    return {status.value: int(counts.get(status, 0)) for status in RunStatus}


def sweep_queued(
    session: Session, team_id: UUID, sweep_id: UUID, runs: int, workflow: str, priority: int
) -> None:
    data = {"runs": runs, "workflow": workflow, "priority": priority}
    events.record(session, NewEvent(EventType.SWEEP_QUEUED, team_id, sweep_id, data=data))


def sweep_moved(
    session: Session,
    team_id: UUID,
    sweep_id: UUID,
    from_statuses: Iterable[SweepStatus],
    to: SweepStatus,
    counts: Mapping[RunStatus, int],
    data: Mapping[str, Any] | None = None,
) -> None:
    """The events of a sweep's compare-and-set that applied. Reaching a final status records
    `sweep.finished` last, a cancellation included (after `sweep.cancelled`)."""
    sources = frozenset(from_statuses)
    kind = _SWEEP_TARGETS.get(to)
    if to in (SweepStatus.RUNNING, SweepStatus.PENDING) and sources <= RESUMABLE:
        kind = EventType.SWEEP_RESUMED
    recorded = []
    if kind is not None:
        recorded.append(NewEvent(kind, team_id, sweep_id, data=dict(data or {})))
    if to in FINAL_SWEEP_STATUSES:
        finished = {"status": to.value, "counts": counts_data(counts)}
        recorded.append(NewEvent(EventType.SWEEP_FINISHED, team_id, sweep_id, data=finished))
    events.record(session, *recorded)


def sweep_reopened(session: Session, team_id: UUID, sweep_id: UUID, queued: int) -> None:
    data = {"runs": queued}
    events.record(session, NewEvent(EventType.SWEEP_REOPENED, team_id, sweep_id, data=data))


def grid_ready(session: Session, team_id: UUID, sweep_id: UUID, pages: int) -> None:
    data = {"pages": pages, "url": f"/v1/sweeps/{sweep_id}/grids"}
    events.record(session, NewEvent(EventType.GRID_READY, team_id, sweep_id, data=data))


def run_started(
    session: Session,
    team_id: UUID,
    sweep_id: UUID,
    index: int,
    *,
    instance: str,
    prompt_id: str,
    attempt: int,
) -> None:
    data = {"instance": instance, "prompt_id": prompt_id, "attempt": attempt}
    events.record(session, NewEvent(EventType.RUN_STARTED, team_id, sweep_id, index, data))


def run_succeeded(
    session: Session, team_id: UUID, sweep_id: UUID, index: int, outputs: Sequence[str]
) -> None:
    data = {"outputs": list(outputs)}
    events.record(session, NewEvent(EventType.RUN_SUCCEEDED, team_id, sweep_id, index, data))


def run_failed(
    session: Session, team_id: UUID, sweep_id: UUID, index: int, error: Mapping[str, Any] | None
) -> None:
    error = error or {}
    data = {
        "node_id": error.get("node_id"),
        "node_type": error.get("class_type"),
        "message": error.get("message", ""),
    }
    events.record(session, NewEvent(EventType.RUN_FAILED, team_id, sweep_id, index, data))


def runs_queued(
    session: Session, team_id: UUID, sweep_id: UUID, indexes: Iterable[int], reason: str
) -> None:
    """Runs queued again: a failed attempt requeued, a retry, or an extension's new runs."""
    data = {"reason": reason}
    queued = [
        NewEvent(EventType.RUN_QUEUED, team_id, sweep_id, index, data) for index in sorted(indexes)
    ]
    events.record(session, *queued)


def runs_cancelled(session: Session, team_id: UUID, sweep_id: UUID, indexes: Iterable[int]) -> None:
    cancelled = [
        NewEvent(EventType.RUN_CANCELLED, team_id, sweep_id, index) for index in sorted(indexes)
    ]
    events.record(session, *cancelled)


def run_progress(
    session: Session, team_id: UUID, sweep_id: UUID, index: int, node: str, value: int, max_: int
) -> None:
    data = {"node": node, "value": value, "max": max_}
    events.record(session, NewEvent(EventType.RUN_PROGRESS, team_id, sweep_id, index, data))


def run_cached(
    session: Session, team_id: UUID, sweep_id: UUID, index: int, nodes: Sequence[str]
) -> None:
    data = {"nodes": list(nodes)}
    events.record(session, NewEvent(EventType.RUN_CACHED, team_id, sweep_id, index, data))
