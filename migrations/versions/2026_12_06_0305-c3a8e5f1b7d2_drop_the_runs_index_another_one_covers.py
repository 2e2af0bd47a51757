"""Drop ix_runs_sweep_id_status: ix_runs_sweep_id_status_dispatch_order starts with the same
columns and serves the same lookups, and every run inserted or moved paid for both.

Revision ID: c3a8e5f1b7d2
Revises: b7e4c1a9d2f3
Create Date: 2026-12-06 03:05:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "c3a8e5f1b7d2"
down_revision: str | Sequence[str] | None = "b7e4c1a9d2f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_runs_sweep_id_status", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_sweep_id_status", "runs", ["sweep_id", "status"])
