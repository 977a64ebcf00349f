"""Patient messaging: reminder claims, inbound messages, consent changes, practice flags, and
effects' provider ids

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 11:18:40.369353
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.store.base

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_changes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("contact_digest", sa.String(length=64), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("keyword", sa.String(length=32), nullable=False),
        sa.Column(
            "inbound_message_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=True,
        ),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("changed_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_consent_changes")),
    )
    with op.batch_alter_table("consent_changes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_changes_contact", ["channel", "contact_digest", "id"], unique=False
        )

    op.create_table(
        "inbound_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider_id", sa.String(length=64), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("contact_digest", sa.String(length=64), nullable=False),
        sa.Column("sender_enc", sa.LargeBinary(), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("intent", sa.String(length=16), nullable=False),
        sa.Column("appointment_ids", sa.JSON(), nullable=True),
        sa.Column("received_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("handled_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbound_messages")),
        sa.UniqueConstraint("provider_id", name=op.f("uq_inbound_messages_provider_id")),
    )
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_inbound_messages_contact", ["contact_digest", "received_at"], unique=False
        )

    op.create_table(
        "practice_flags",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column("updated_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_practice_flags")),
    )
    op.create_table(
        "reminder_claims",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("appointment_id", sa.String(length=64), nullable=False),
        sa.Column("touchpoint", sa.String(length=32), nullable=False),
        sa.Column("start_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("effect_key", sa.String(length=300), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("contact_digest", sa.String(length=64), nullable=False),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("asks_reply", sa.Boolean(), nullable=False),
        sa.Column("created_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reminder_claims")),
        sa.UniqueConstraint(
            "appointment_id",
            "touchpoint",
            "start_at",
            name=op.f("uq_reminder_claims_appointment_id_touchpoint_start_at"),
        ),
    )
    with op.batch_alter_table("reminder_claims", schema=None) as batch_op:
        batch_op.create_index(
            "ix_reminder_claims_contact", ["contact_digest", "created_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_reminder_claims_effect_key"), ["effect_key"], unique=False
        )
        batch_op.create_index("ix_reminder_claims_start", ["start_at"], unique=False)

    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider_ref", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("delivery_status", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_effects_provider_ref"), ["provider_ref"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_effects_provider_ref"))
        batch_op.drop_column("delivery_status")
        batch_op.drop_column("provider_ref")

    with op.batch_alter_table("reminder_claims", schema=None) as batch_op:
        batch_op.drop_index("ix_reminder_claims_start")
        batch_op.drop_index(batch_op.f("ix_reminder_claims_effect_key"))
        batch_op.drop_index("ix_reminder_claims_contact")

    op.drop_table("reminder_claims")
    op.drop_table("practice_flags")
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_index("ix_inbound_messages_contact")

    op.drop_table("inbound_messages")
    with op.batch_alter_table("consent_changes", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_changes_contact")

    op.drop_table("consent_changes")
