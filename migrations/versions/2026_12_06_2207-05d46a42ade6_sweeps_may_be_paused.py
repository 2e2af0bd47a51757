"""Sweeps may be paused: the sweeps status CHECK constraint admits 'paused'.

Revision ID: 05d46a42ade6
Revises: e1a7c3d9b2f4
Create Date: 2026-12-06 22:07:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "05d46a42ade6"
down_revision: str | Sequence[str] | None = "e1a7c3d9b2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BEFORE = ("pending", "running", "finalizing", "succeeded", "partial", "failed", "cancelled")
AFTER = (
    "pending",
    "running",
    "paused",
    "finalizing",
    "succeeded",
    "partial",
    "failed",
    "cancelled",
)


def _allow(statuses: Sequence[str]) -> None:
    # Batch mode: SQLite cannot alter a constraint, so the table is copied with the new one.
    # The dropped name is final (op.f); the created one gets the convention's prefix.
    values = ", ".join(f"'{status}'" for status in statuses)
    with op.batch_alter_table("sweeps") as batch:
        batch.drop_constraint(op.f("ck_sweeps_status"), type_="check")
        batch.create_check_constraint("status", f"status IN ({values})")


def upgrade() -> None:
    _allow(AFTER)


def downgrade() -> None:
    # A paused sweep has no place in the old states: it goes back to running, whose queued
    # runs the next claim takes, as before pausing existed.
    op.execute("UPDATE sweeps SET status = 'running' WHERE status = 'paused'")
    _allow(BEFORE)
