"""Imports every table module so that Base.metadata is complete (Alembic and tests use this)."""

from clinicflow.store import audit, engine, messaging, replica  # noqa: F401  (imported for their tables)
from clinicflow.store.base import Base

metadata = Base.metadata
