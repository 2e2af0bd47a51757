"""SQL for sweeps: creation and reads, always scoped to the owning team."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Sweep


def add_sweep(
    session: Session,
    *,
    sweep_id: UUID,
    team_id: UUID,
    workflow: str,
    request: Mapping[str, Any],
    plan: Mapping[str, Any],
    total: int,
) -> Sweep:
    sweep = Sweep(
        id=sweep_id,
        team_id=team_id,
        workflow=workflow,
        request=dict(request),
        plan=dict(plan),
        total=total,
    )
    session.add(sweep)
    # Flushed now so the runs' bulk insert, which bypasses the ORM, finds the parent row.
    session.flush()
    return sweep


def get_sweep(session: Session, sweep_id: UUID, team_id: UUID) -> Sweep | None:
    """The sweep if `team_id` owns it; another team's sweep is indistinguishable from none."""
    query = sa.select(Sweep).where(Sweep.id == sweep_id, Sweep.team_id == team_id)
    return session.scalars(query).one_or_none()


def page_sweeps(
    session: Session, team_id: UUID, offset: int, limit: int
) -> tuple[list[Sweep], int]:
    """One page of the team's sweeps, newest first, and how many the team has in all."""
    query = (
        sa.select(Sweep)
        .where(Sweep.team_id == team_id)
        .order_by(Sweep.created_at.desc(), Sweep.id.desc())
        .offset(offset)
        .limit(limit)
    )
    count = sa.select(sa.func.count()).select_from(Sweep).where(Sweep.team_id == team_id)
    return list(session.scalars(query)), session.scalar(count) or 0
