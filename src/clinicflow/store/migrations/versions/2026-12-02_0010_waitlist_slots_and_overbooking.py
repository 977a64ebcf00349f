"""waitlist freed slots, how each offer went out, overbooking decisions

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 06:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.store.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, clinicflow.store.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "waitlist_slots",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("slot_key", sa.String(length=160), nullable=False),
        sa.Column("freed_by", sa.String(length=64), nullable=False),
        sa.Column("practitioner_id", sa.String(length=64), nullable=False),
        sa.Column("location_id", sa.String(length=64), nullable=False),
        sa.Column("specialty", sa.String(length=64), nullable=False),
        sa.Column("visit_type", sa.String(length=32), nullable=True),
        sa.Column("slot_id", sa.String(length=64), nullable=True),
        _at("start_at", nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        _at("freed_at", nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("waves_sent", sa.Integer(), nullable=False),
        _at("next_wave_at", nullable=True),
        _at("closed_at", nullable=True),
        sa.Column("closed_why", sa.String(length=200), nullable=True),
        sa.Column("booked_entry_id", sa.String(length=64), nullable=True),
        sa.Column("value_cents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_waitlist_slots")),
        sa.UniqueConstraint("slot_key", name=op.f("uq_waitlist_slots_slot_key")),
    )
    with op.batch_alter_table("waitlist_slots", schema=None) as batch_op:
        batch_op.create_index("ix_waitlist_slots_state_next", ["state", "next_wave_at"])
    op.create_table(
        "overbook_decisions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("practitioner_id", sa.String(length=64), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("expected_noshows", sa.Float(), nullable=False),
        sa.Column("room", sa.Integer(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        _at("decided_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_overbook_decisions")),
        sa.UniqueConstraint(
            "practitioner_id", "day", name=op.f("uq_overbook_decisions_practitioner_id_day")
        ),
    )
    with op.batch_alter_table("waitlist_offers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("contact_digest", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_waitlist_offers_contact_digest"), ["contact_digest"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("waitlist_offers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_waitlist_offers_contact_digest"))
        batch_op.drop_column("contact_digest")
        batch_op.drop_column("channel")
    with op.batch_alter_table("waitlist_slots", schema=None) as batch_op:
        batch_op.drop_index("ix_waitlist_slots_state_next")
    op.drop_table("waitlist_slots")
    op.drop_table("overbook_decisions")
