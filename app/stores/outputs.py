"""SQL for outputs, the files a run produced: idempotent inserts and team-scoped reads.

Takes the caller's session and never commits. Recording is idempotent on (run_id, position):
a redelivered task that records the same outputs again changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID, uuid4

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from app.db.models import Output, Run, Sweep


@dataclass(frozen=True, slots=True)
class NewOutput:
    position: int
    kind: str
    path: str  # relative to DATA_DIR, from `Storage.relative`
    mime: str
    size: int
    sha256: str


def add_outputs(session: Session, run_id: UUID, outputs: Sequence[NewOutput]) -> None:
    """Record a run's outputs; a position already recorded keeps its first row."""
    if not outputs:
        return
    rows = [
        {
            "id": uuid4(),
            "run_id": run_id,
            "position": o.position,
            "kind": o.kind,
            "path": o.path,
            "mime": o.mime,
            "size": o.size,
            "sha256": o.sha256,
        }
        for o in outputs
    ]
    session.execute(_insert_ignoring_duplicates(session), rows)


def output_rows(outputs: Sequence[NewOutput]) -> dict[str, str]:
    """The parameter of `inserted_for`: the outputs as one JSON array of rows."""
    rows = [
        {"id": str(uuid4()), **{column: getattr(output, column) for column, _ in _COLUMNS[1:]}}
        for output in outputs
    ]
    return {_ROWS: json.dumps(rows)}


def inserted_for(run: sa.CTE) -> sa.Insert:
    """Postgres: the outputs (`output_rows`) of the run `run` returns (its `id`), inserted
    as `add_outputs` does, from inside the statement that moved the run
    (`sweeps.counting`), created at the statement's bound `now`; nothing when it returns no
    row. One JSON array of rows rather than parameters per output, so the statement is the
    same whatever their number; and one string, which psycopg adapts in a fraction of the
    Python that an array per column costs it on every record."""
    files = (
        sa.func.jsonb_to_recordset(sa.cast(sa.bindparam(_ROWS, type_=sa.Text()), JSONB))
        .table_valued(*(sa.column(name, type_) for name, type_ in _COLUMNS))
        .render_derived(name="new_output", with_types=True)
    )
    columns = [name for name, _ in _COLUMNS]
    rows = sa.select(
        *(files.c[column] for column in columns),
        run.c.id,
        sa.bindparam("now", type_=_outputs.c.created_at.type),
    ).select_from(run.join(files, sa.true()))
    insert = postgresql.insert(_outputs).from_select([*columns, "run_id", "created_at"], rows)
    return insert.on_conflict_do_nothing(index_elements=[_outputs.c.run_id, _outputs.c.position])


def list_outputs(session: Session, run_id: UUID) -> list[Output]:
    query = sa.select(Output).where(Output.run_id == run_id).order_by(Output.position)
    return list(session.scalars(query))


def get_output(
    session: Session, sweep_id: UUID, team_id: UUID, run_index: int, position: int
) -> Output | None:
    """Output `position` of run `run_index`, if `team_id` owns the sweep; else None, the same
    answer as for an output that does not exist."""
    query = (
        sa.select(Output)
        .join(Run, Run.id == Output.run_id)
        .join(Sweep, Sweep.id == Run.sweep_id)
        .where(
            Sweep.id == sweep_id,
            Sweep.team_id == team_id,
            Run.index == run_index,
            Output.position == position,
        )
    )
    return session.scalars(query).one_or_none()


def _insert_ignoring_duplicates(session: Session) -> sa.Insert:
    dialect = session.get_bind().dialect.name
    insert = _IGNORING_DUPLICATES.get(dialect)
    if insert is None:
        raise NotImplementedError(f"no idempotent insert for dialect {dialect!r}")
    return insert


def _ignoring_duplicates(
    insert: Callable[[sa.Table], postgresql.Insert | sqlite.Insert],
) -> sa.Insert:
    # ON CONFLICT DO NOTHING exists on both backends but only in their dialect constructs.
    # On the table, not the entity: a Core insert skips the ORM's bulk path on every run.
    return insert(_outputs).on_conflict_do_nothing(
        index_elements=[_outputs.c.run_id, _outputs.c.position]
    )


_outputs = cast(sa.Table, Output.__table__)
# The columns `inserted_for` inserts from its JSON rows, the id first (made here, not a field
# of NewOutput), the rest named as NewOutput's fields.
_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("id", sa.Uuid()),
    ("position", sa.Integer()),
    ("kind", sa.String()),
    ("path", sa.String()),
    ("mime", sa.String()),
    ("size", sa.BigInteger()),
    ("sha256", sa.String()),
)
_ROWS = "output_rows"
# Built once per backend: every run's record inserts its outputs.
_IGNORING_DUPLICATES = {
    "postgresql": _ignoring_duplicates(postgresql.insert),
    "sqlite": _ignoring_duplicates(sqlite.insert),
}
