"""message triage: triaged messages, corrections, staff alert phones, coalesced runs' events

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.store.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, clinicflow.store.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "triage_messages",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("source_ref", sa.String(length=160), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("thread_ref", sa.String(length=160), nullable=True),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        _at("received_at", nullable=False),
        sa.Column("pool", sa.String(length=32), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=True),
        _at("triaged_at", nullable=True),
        sa.Column("work_item_key", sa.String(length=200), nullable=True),
        sa.Column("corrected_pool", sa.String(length=32), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        _at("next_escalation_at", nullable=True),
        _at("acknowledged_at", nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_messages")),
        sa.UniqueConstraint("source_ref", name=op.f("uq_triage_messages_source_ref")),
    )
    with op.batch_alter_table("triage_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_triage_messages_escalation",
            ["urgent", "acknowledged_at", "next_escalation_at"],
            unique=False,
        )
        batch_op.create_index("ix_triage_messages_received", ["received_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_triage_messages_patient_id"), ["patient_id"], unique=False
        )
    op.create_table(
        "triage_corrections",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("message_id", _ID, nullable=False),
        sa.Column("from_pool", sa.String(length=32), nullable=False),
        sa.Column("to_pool", sa.String(length=32), nullable=False),
        sa.Column("decided_pool", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("corrected_by", sa.String(length=64), nullable=False),
        _at("corrected_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["triage_messages.id"],
            name=op.f("fk_triage_corrections_message_id_triage_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_triage_corrections")),
    )
    with op.batch_alter_table("triage_corrections", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_triage_corrections_message_id"), ["message_id"], unique=False
        )
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("notify_phone", sa.String(length=32), nullable=True))
    with op.batch_alter_table("automation_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("event_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("automation_runs", schema=None) as batch_op:
        batch_op.drop_column("event_ids")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("notify_phone")
    op.drop_table("triage_corrections")
    op.drop_table("triage_messages")
