"""Execution state: dispatch order, model keys and claims on runs; the instances table.

Revision ID: 34ace3648dfd
Revises: eecbda91cd54
Create Date: 2026-11-23 13:50:56.079476

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "34ace3648dfd"
down_revision: str | Sequence[str] | None = "eecbda91cd54"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("url", sa.String(), nullable=False),
        sa.Column(
            "tags",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("healthy", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(), nullable=True),
        sa.Column("model_key", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("url", name=op.f("pk_instances")),
    )
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("dispatch_order", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("model_key", sa.String(length=32), server_default="", nullable=False)
        )
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_runs_sweep_id_status_dispatch_order",
            ["sweep_id", "status", "dispatch_order"],
            unique=False,
        )

    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("hinted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_column("hinted_at")

    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_index("ix_runs_sweep_id_status_dispatch_order")
        batch_op.drop_column("claimed_by")
        batch_op.drop_column("model_key")
        batch_op.drop_column("dispatch_order")

    op.drop_table("instances")
