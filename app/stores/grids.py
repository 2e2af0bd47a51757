"""SQL the grid builder reads: a sweep's stored request and plan, and every run with the first
image or video it produced, streamed in index order.

Takes the caller's session and never commits. Not team-scoped: only the finalizer reads these,
for a sweep id from its own message; the API checks ownership through `stores.sweeps`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from app.db.models import Output, Run, Sweep
from app.domain.assignments import full_assignment
from app.domain.states import RunStatus, SweepStatus
from app.stores.sweeps import fixed_values

# What a grid can show of an output; audio and other files are not pictures.
SHOWN_KINDS = ("image", "video")
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class GridSweep:
    id: UUID
    workflow: str
    status: SweepStatus
    request: Mapping[str, Any]
    plan: Mapping[str, Any]
    total: int


@dataclass(frozen=True, slots=True)
class GridRun:
    index: int
    status: RunStatus
    error: Mapping[str, Any] | None
    assignment: Mapping[str, Any]  # the full one, the sweep's fixed values included
    path: str | None  # relative to DATA_DIR; None when the run has no image or video
    kind: str | None
    sha256: str | None  # of that file: names its fitted tile (`app.grids.tiles`)


def sweep_for_grids(session: Session, sweep_id: UUID) -> GridSweep | None:
    sweep = session.get(Sweep, sweep_id)
    if sweep is None:
        return None
    return GridSweep(
        sweep.id, sweep.workflow, sweep.status, dict(sweep.request), dict(sweep.plan), sweep.total
    )


def runs_with_first_output(session: Session, sweep_id: UUID) -> Iterator[GridRun]:
    """Every run of the sweep by index, with its lowest-position image or video, if any."""
    shown = aliased(Output)
    first_position = (
        sa.select(sa.func.min(shown.position))
        .where(shown.run_id == Run.id, shown.kind.in_(SHOWN_KINDS))
        .scalar_subquery()
    )
    query = (
        sa.select(
            Run.index,
            Run.status,
            Run.error,
            Run.own_values,
            Output.path,
            Output.kind,
            Output.sha256,
        )
        .outerjoin(Output, sa.and_(Output.run_id == Run.id, Output.position == first_position))
        .where(Run.sweep_id == sweep_id)
        .order_by(Run.index)
        # Rows arrive in batches rather than all at once: a sweep may have 10,000 runs.
        .execution_options(yield_per=_BATCH)
    )
    fixed = fixed_values(session, sweep_id)
    for index, status, error, own, path, kind, sha256 in session.execute(query):
        yield GridRun(index, status, error, full_assignment(fixed, own), path, kind, sha256)
