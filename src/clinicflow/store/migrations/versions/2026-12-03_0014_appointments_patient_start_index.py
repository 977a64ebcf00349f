"""appointments: index by (patient, start), not by patient alone

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 12:30:00.000000

Reminders read the upcoming visits of the patients a message may fold in (a family on one
phone) for a window of days. By patient alone, SQLite found every appointment each of them
ever had (four a patient in the synthetic practice, nearly all in the past) and read each row to
test its start; by (patient, start) it reads only those in the window. The index still serves
every lookup by patient alone (its first column).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_appointments_patient", table_name="appointments")
    op.create_index("ix_appointments_patient_start", "appointments", ["patient_id", "start_at"])


def downgrade() -> None:
    op.drop_index("ix_appointments_patient_start", table_name="appointments")
    op.create_index("ix_appointments_patient", "appointments", ["patient_id"])
