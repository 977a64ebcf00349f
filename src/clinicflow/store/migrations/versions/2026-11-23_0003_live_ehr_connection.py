"""What a live EHR connection needs: periodic jobs, removals, merges and effect focus

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.store.base

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "periodic_jobs",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_expires_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_started_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_finished_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_success_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_summary", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_periodic_jobs")),
    )
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("removed_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replaced_by", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_patients_replaced_by"), ["replaced_by"], unique=False)
    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("focus", sa.String(length=128), nullable=True))
        batch_op.create_index("ix_effects_focus_state", ["focus", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.drop_index("ix_effects_focus_state")
        batch_op.drop_column("focus")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patients_replaced_by"))
        batch_op.drop_column("replaced_by")
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.drop_column("removed_at")
    op.drop_table("periodic_jobs")
