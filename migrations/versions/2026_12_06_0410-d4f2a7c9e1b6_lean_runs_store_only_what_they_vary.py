"""Lean runs: `runs.assignment` becomes `runs.own_values`, what each run varies, as JSON text.

The sweep's fixed values are stored once, in its plan, and composed with each run's own
values where they are read (`app.domain.assignments.full_assignment`). Existing rows keep
their full assignments: composition lets the stored value win, so they read as before. JSON
rather than JSONB on Postgres: submitting 10,000 runs no longer parses 10,000 documents.
On Postgres the type change rewrites the runs table once.

Revision ID: d4f2a7c9e1b6
Revises: d4f2a6b8c0e1
Create Date: 2026-12-06 03:10:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "d4f2a7c9e1b6"
down_revision: str | Sequence[str] | None = "d4f2a6b8c0e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.alter_column(
            "runs",
            "assignment",
            type_=sa.JSON(),
            existing_type=postgresql.JSONB(),
            postgresql_using="assignment::json",
        )
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("assignment", new_column_name="own_values", existing_type=sa.JSON())


def downgrade() -> None:
    # The code before this revision reads each row as the whole assignment: lean rows get
    # their sweep's fixed values back, their own values winning, as full_assignment does.
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(
            "UPDATE runs SET own_values = ((sweeps.plan -> 'fixed') || own_values::jsonb)::json "
            "FROM sweeps WHERE sweeps.id = runs.sweep_id AND sweeps.plan ? 'fixed'"
        )
    else:
        _compose_in_python(bind)
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("own_values", new_column_name="assignment", existing_type=sa.JSON())
    if bind.dialect.name == "postgresql":
        op.alter_column(
            "runs",
            "assignment",
            type_=postgresql.JSONB(),
            existing_type=sa.JSON(),
            postgresql_using="assignment::jsonb",
        )


def _compose_in_python(bind: sa.Connection) -> None:
    # SQLite's json_patch drops keys whose value is null (RFC 7396), so no SQL here.
    sweeps = sa.table("sweeps", sa.column("id"), sa.column("plan", sa.JSON()))
    runs = sa.table(
        "runs", sa.column("id"), sa.column("sweep_id"), sa.column("own_values", sa.JSON())
    )
    fixed = {row.id: (row.plan or {}).get("fixed") or {} for row in bind.execute(sa.select(sweeps))}
    for row in bind.execute(sa.select(runs)).all():
        composed = {**fixed.get(row.sweep_id, {}), **row.own_values}
        bind.execute(runs.update().where(runs.c.id == row.id).values(own_values=composed))
