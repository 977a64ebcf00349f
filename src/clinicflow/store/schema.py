"""Bring a database's schema to the current version."""

from __future__ import annotations

from sqlalchemy import Engine

from clinicflow.store import models


def create_schema(engine: Engine) -> None:
    """Create every table (interim: replaced by Alembic `upgrade head` once migrations exist)."""
    models.metadata.create_all(engine)
