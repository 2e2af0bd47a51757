"""Partial indexes on the runs in flight: claims and the reconciler no longer scan history.

Revision ID: 5c1d2e7f9a10
Revises: 79af97a2a554
Create Date: 2026-12-02 04:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5c1d2e7f9a10"
down_revision: str | Sequence[str] | None = "79af97a2a554"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUNNING = sa.text("status = 'running'")
CLAIMED = sa.text("claimed_by IS NOT NULL")


def upgrade() -> None:
    op.create_index(
        "ix_runs_running_instance",
        "runs",
        ["instance"],
        postgresql_where=RUNNING,
        sqlite_where=RUNNING,
    )
    op.create_index(
        "ix_runs_claimed_by",
        "runs",
        ["claimed_by"],
        postgresql_where=CLAIMED,
        sqlite_where=CLAIMED,
    )


def downgrade() -> None:
    op.drop_index("ix_runs_claimed_by", table_name="runs")
    op.drop_index("ix_runs_running_instance", table_name="runs")
