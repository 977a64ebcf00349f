"""Imports every table module so that Base.metadata is complete (Alembic and tests use this)."""

from clinicflow.store import (  # noqa: F401  (imported for their tables)
    audit,
    engine,
    messaging,
    noshow,
    overbooking,
    proposals,
    replica,
    staff,
    triage,
    waitlist,
)
from clinicflow.store.base import Base

metadata = Base.metadata
