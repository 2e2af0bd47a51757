"""Priorities, fair-share weights and quotas: team caps, a sweep priority, the table of sweeps
with queued work that claims choose from, and the partial index their run probes read.

Revision ID: d4f1a2b3c5e6
Revises: d4f2a7c9e1b6
Create Date: 2026-12-06 03:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d4f1a2b3c5e6"
down_revision: str | Sequence[str] | None = "d4f2a7c9e1b6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CAPS = ("max_running", "max_queued", "max_runs_per_sweep", "max_priority")
QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("weight", sa.Integer(), server_default="1", nullable=False))
        for cap in CAPS:
            batch.add_column(sa.Column(cap, sa.Integer(), nullable=True))
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("priority", sa.Integer(), server_default="50", nullable=False))
    op.create_table(
        "active_sweeps",
        sa.Column("sweep_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(["sweep_id"], ["sweeps.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["team_id"], ["teams.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("sweep_id"),
    )
    op.create_index("ix_active_sweeps_team_id", "active_sweeps", ["team_id"])
    op.create_index(
        "ix_runs_queued_model",
        "runs",
        ["sweep_id", "model_key", "dispatch_order"],
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )
    # Every sweep that has queued runs now; those pending or running may be claimed.
    op.execute(
        "INSERT INTO active_sweeps (sweep_id, team_id, priority, created_at, active) "
        "SELECT id, team_id, priority, created_at, status IN ('pending', 'running') FROM sweeps "
        "WHERE queued_count > 0"
    )


def downgrade() -> None:
    op.drop_index("ix_runs_queued_model", table_name="runs")
    op.drop_index("ix_active_sweeps_team_id", table_name="active_sweeps")
    op.drop_table("active_sweeps")
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("priority")
    with op.batch_alter_table("teams") as batch:
        for cap in reversed(CAPS):
            batch.drop_column(cap)
        batch.drop_column("weight")
