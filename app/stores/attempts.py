"""SQL for `run_attempts`: what a run keeps of each attempt it left behind. Written in the
transaction that moves the run back to queued (`app.stores.runs`), never on its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.db.models import RunAttempt


@dataclass(frozen=True, slots=True)
class PastAttempt:
    run_id: UUID
    attempt: int
    status: str  # how it ended: failed, cancelled, or queued (the worker retried it)
    instance: str | None
    started_at: datetime | None
    finished_at: datetime | None
    error: Mapping[str, Any] | None


def add_attempts(session: Session, attempts: Sequence[PastAttempt]) -> None:
    """Store each attempt once: one already stored for (run, attempt) is kept as it was, so
    a run retried by its worker and then again by hand keeps the first record of each."""
    if not attempts:
        return
    rows = [
        {
            "id": uuid4(),
            "run_id": a.run_id,
            "attempt": a.attempt,
            "status": a.status,
            "instance": a.instance,
            "started_at": a.started_at,
            "finished_at": a.finished_at,
            "error": None if a.error is None else dict(a.error),
        }
        for a in attempts
    ]
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(RunAttempt)
    session.execute(insert.on_conflict_do_nothing(index_elements=["run_id", "attempt"]), rows)


def attempts_of(session: Session, run_id: UUID) -> list[RunAttempt]:
    """The run's earlier attempts, first first."""
    query = sa.select(RunAttempt).where(RunAttempt.run_id == run_id).order_by(RunAttempt.attempt)
    return list(session.scalars(query))
