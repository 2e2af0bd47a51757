"""Sweeps pin the workflow version they run, so a new version never changes a sweep's runs.

Kept apart from the workflow tables because it alters `sweeps`, which other revisions touch.

Revision ID: 7b9e4c2d1f30
Revises: 60f380e7b4a2
Create Date: 2026-12-06 02:51:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7b9e4c2d1f30"
down_revision: str | Sequence[str] | None = "60f380e7b4a2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.add_column(sa.Column("workflow_version_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_sweeps_workflow_version_id_workflow_versions"),
            "workflow_versions",
            ["workflow_version_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_sweeps_workflow_version_id_workflow_versions"), type_="foreignkey"
        )
        batch_op.drop_column("workflow_version_id")
