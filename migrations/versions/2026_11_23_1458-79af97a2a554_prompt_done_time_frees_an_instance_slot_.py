"""Runs record when ComfyUI finished the prompt, which frees the instance slot before ingest.

Revision ID: 79af97a2a554
Revises: 34ace3648dfd
Create Date: 2026-11-23 14:58:15.554543

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "79af97a2a554"
down_revision: str | Sequence[str] | None = "34ace3648dfd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prompt_done_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("prompt_done_at")
