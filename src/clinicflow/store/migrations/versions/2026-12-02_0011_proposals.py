"""automation proposals and decisions

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import clinicflow.store.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _at(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, clinicflow.store.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "proposals",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("process", sa.String(length=200), nullable=False),
        sa.Column("department", sa.String(length=100), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("volume_per_week", sa.Float(), nullable=False),
        sa.Column("minutes_per_task", sa.Float(), nullable=False),
        sa.Column("share_automated", sa.Float(), nullable=False),
        sa.Column("build_cost", sa.Float(), nullable=False),
        sa.Column("running_cost_per_year", sa.Float(), nullable=False),
        sa.Column("risks", sa.Text(), nullable=False),
        sa.Column("clinical_signoff", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=24), nullable=False),
        sa.Column("automation", sa.String(length=100), nullable=True),
        sa.Column("live_on", sa.Date(), nullable=True),
        _at("trial_from", nullable=True),
        _at("trial_until", nullable=True),
        sa.Column("filed_by", sa.String(length=64), nullable=False),
        _at("filed_at", nullable=False),
        _at("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposals")),
    )
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.create_index("ix_proposals_state", ["state"], unique=False)
    op.create_table(
        "proposal_decisions",
        sa.Column("id", _ID, autoincrement=True, nullable=False),
        sa.Column("proposal_id", _ID, nullable=False),
        sa.Column("decision", sa.String(length=24), nullable=False),
        sa.Column("from_state", sa.String(length=24), nullable=False),
        sa.Column("to_state", sa.String(length=24), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("decided_by", sa.String(length=64), nullable=False),
        _at("decided_at", nullable=False),
        sa.Column("weeks", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposals.id"],
            name=op.f("fk_proposal_decisions_proposal_id_proposals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal_decisions")),
    )
    with op.batch_alter_table("proposal_decisions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proposal_decisions_proposal_id"), ["proposal_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("proposal_decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_proposal_decisions_proposal_id"))
    op.drop_table("proposal_decisions")
    with op.batch_alter_table("proposals", schema=None) as batch_op:
        batch_op.drop_index("ix_proposals_state")
    op.drop_table("proposals")
