"""Sweep estimates: what a sweep was expected to cost at submission, and the index an
estimate reads a workflow's latest sweeps from.

Revision ID: e7a3c1d5b9f2
Revises: d4f1a2b3c5e6
Create Date: 2026-12-06 22:04:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "e7a3c1d5b9f2"
down_revision: str | Sequence[str] | None = "d4f1a2b3c5e6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.add_column(sa.Column("estimate", JSON, nullable=True))
        batch.create_index(
            "ix_sweeps_workflow_created_at", ["workflow", sa.literal_column("created_at DESC")]
        )


def downgrade() -> None:
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_index("ix_sweeps_workflow_created_at")
        batch.drop_column("estimate")
