"""Reminder marks (the planner's incremental plan), its state, and the replica's change counters

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 14:29:56.871219
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.store.base

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reminder_marks",
        sa.Column("appointment_id", sa.String(length=64), nullable=False),
        sa.Column("start_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("next_check_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("appointment_id", name=op.f("pk_reminder_marks")),
    )
    with op.batch_alter_table("reminder_marks", schema=None) as batch_op:
        batch_op.create_index("ix_reminder_marks_next_check", ["next_check_at"], unique=False)
        batch_op.create_index("ix_reminder_marks_start", ["start_at"], unique=False)

    op.create_table(
        "reminder_plan_state",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_reminder_plan_state")),
    )
    op.create_table(
        "replica_generations",
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("generation", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("resource_type", name=op.f("pk_replica_generations")),
    )


def downgrade() -> None:
    op.drop_table("replica_generations")
    op.drop_table("reminder_plan_state")
    with op.batch_alter_table("reminder_marks", schema=None) as batch_op:
        batch_op.drop_index("ix_reminder_marks_start")
        batch_op.drop_index("ix_reminder_marks_next_check")

    op.drop_table("reminder_marks")
