"""Per-status run counts on sweeps, so reading a sweep no longer counts its runs.

Revision ID: b7e4c1a9d2f3
Revises: 7b9e4c2d1f30
Create Date: 2026-12-06 03:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "b7e4c1a9d2f3"
down_revision: str | Sequence[str] | None = "7b9e4c2d1f30"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported: a revision must not change when the models do.
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        for status in STATUSES:
            batch.add_column(
                sa.Column(f"{status}_count", sa.Integer(), server_default="0", nullable=False)
            )
    # Backfilled from a recount; from here on every run transition moves them.
    sweeps = sa.table("sweeps", sa.column("id"), *(sa.column(f"{s}_count") for s in STATUSES))
    runs = sa.table("runs", sa.column("sweep_id"), sa.column("status"))
    op.execute(
        sweeps.update().values(
            {
                f"{status}_count": sa.select(sa.func.count())
                .select_from(runs)
                .where(runs.c.sweep_id == sweeps.c.id, runs.c.status == status)
                .scalar_subquery()
                for status in STATUSES
            }
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        for status in reversed(STATUSES):
            batch.drop_column(f"{status}_count")
