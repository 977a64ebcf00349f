"""Index the replica's local changes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 08:06:52.809419
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # `clinicflow status` and every web page count local changes; without an index that count
    # reads every encrypted body in the replica.
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.create_index("ix_fhir_resources_local_change", ["local_change"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_resources_local_change")
