"""SQL for browsing a whole sweep at once: every run with its outputs, and a sweep's owner.

Takes the caller's session and never commits. Reads are bounded by the sweep's size
(MAX_RUNS_PER_SWEEP), in two queries whatever that size: runs, then all their outputs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Output, Run, Sweep


@dataclass(frozen=True, slots=True)
class RunWithOutputs:
    run: Run
    outputs: tuple[Output, ...]  # by position


def runs_with_outputs(session: Session, sweep_id: UUID) -> list[RunWithOutputs]:
    """Every run of the sweep in index order, each with its outputs."""
    runs = list(session.scalars(sa.select(Run).where(Run.sweep_id == sweep_id).order_by(Run.index)))
    query = (
        sa.select(Output)
        .join(Run, Run.id == Output.run_id)
        .where(Run.sweep_id == sweep_id)
        .order_by(Output.run_id, Output.position)
    )
    by_run: defaultdict[UUID, list[Output]] = defaultdict(list)
    for output in session.scalars(query):
        by_run[output.run_id].append(output)
    return [RunWithOutputs(run, tuple(by_run.get(run.id, ()))) for run in runs]


def sweep_owner(session: Session, sweep_id: UUID) -> UUID | None:
    """The team owning the sweep. Only for requests that carry a signed link, whose signature
    already proves a member of that team asked for it; everything else scopes by team."""
    return session.scalar(sa.select(Sweep.team_id).where(Sweep.id == sweep_id))
