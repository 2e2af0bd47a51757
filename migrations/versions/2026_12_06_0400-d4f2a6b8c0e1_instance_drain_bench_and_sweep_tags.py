"""Instances can be drained and benched; sweeps record the instance tags their runs need.

Revision ID: d4f2a6b8c0e1
Revises: b7e4c2a91d03
Create Date: 2026-12-06 04:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "d4f2a6b8c0e1"
down_revision: str | Sequence[str] | None = "b7e4c2a91d03"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instances") as batch:
        batch.add_column(
            sa.Column("drained", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch.add_column(
            sa.Column("failure_streak", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("benched_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("required_tags", sa.String(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_column("required_tags")
    with op.batch_alter_table("instances") as batch:
        batch.drop_column("benched_until")
        batch.drop_column("failure_streak")
        batch.drop_column("drained")
