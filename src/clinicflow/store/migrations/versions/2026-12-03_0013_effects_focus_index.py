"""effects: index by focus alone, not (focus, state)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 10:00:00.000000

`void_pending` finds an appointment's effects by focus and tests their state on the few rows it
finds. With the state in the index, each of an effect's three or four state changes moved its
entry to another page of an index keyed at random (13% of the pages a week of reminders
wrote to SQLite's WAL); keyed by focus alone, an entry is written once, when the effect is.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_effects_focus_state", table_name="effects")
    op.create_index("ix_effects_focus", "effects", ["focus"])


def downgrade() -> None:
    op.drop_index("ix_effects_focus", table_name="effects")
    op.create_index("ix_effects_focus_state", "effects", ["focus", "state"])
