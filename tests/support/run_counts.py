"""Checks that a sweep's per-status run counters agree with a recount of its runs."""

from __future__ import annotations

from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.orm import Session

from app.db.models import Sweep
from app.domain.states import RunStatus
from app.stores import runs, sweeps


def stored_counts(session: Session, sweep_id: UUID) -> dict[RunStatus, int]:
    query = sa.select(Sweep).where(Sweep.id == sweep_id)
    # populate_existing: the counters move by UPDATEs the identity map never sees.
    sweep = session.scalars(query.execution_options(populate_existing=True)).one()
    return sweeps.run_counts(sweep)


def assert_counts_match_recount(session: Session, sweep_id: UUID) -> dict[RunStatus, int]:
    counters = stored_counts(session, sweep_id)
    recount = runs.count_runs_by_status(session, sweep_id)
    assert counters == recount, f"sweep {sweep_id}: counters {counters} != recount {recount}"
    return counters


def assert_counts_match_in(database_url: str, sweep_id: UUID) -> dict[RunStatus, int]:
    engine = sa.create_engine(database_url, poolclass=sa.NullPool)
    try:
        with Session(engine) as session:
            return assert_counts_match_recount(session, sweep_id)
    finally:
        engine.dispose()
