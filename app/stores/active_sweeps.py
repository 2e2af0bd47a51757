"""SQL for the table of sweeps with queued runs (`ActiveSweep`), which claims choose from.

A row exists exactly while its sweep's `queued_count` is above zero; `app.stores.sweeps`
keeps it so in the same statement sequence that moves the counter, so it can never disagree
with the runs. Nothing else writes the table.
"""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.models import ActiveSweep, Sweep
from app.domain.states import CLAIMABLE


def follow_queued(session: Session, sweep_id: UUID, queued: int, added: bool) -> None:
    """Make the sweep's row agree with its new queued count: inserted when runs were just
    queued (submission, a retry), deleted when the last queued run left."""
    if queued <= 0:
        session.execute(sa.delete(ActiveSweep).where(ActiveSweep.sweep_id == sweep_id))
    elif added:
        _insert_if_missing(session, sweep_id)


def _insert_if_missing(session: Session, sweep_id: UUID) -> None:
    source = sa.select(
        Sweep.id,
        Sweep.team_id,
        Sweep.priority,
        Sweep.created_at,
        Sweep.status.in_(CLAIMABLE),
    ).where(Sweep.id == sweep_id)
    columns = ["sweep_id", "team_id", "priority", "created_at", "active"]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ActiveSweep)
    session.execute(insert.from_select(columns, source).on_conflict_do_nothing())


def set_active(session: Session, sweep_id: UUID, active: bool) -> None:
    """Whether claims may take the sweep's queued runs: cleared when it stops and while it
    is paused, set again when it is resumed."""
    session.execute(
        sa.update(ActiveSweep).where(ActiveSweep.sweep_id == sweep_id).values(active=active)
    )
