"""Tables, sessions and migrations for SQLite and PostgreSQL."""

from clinicflow.store.base import Base, UTCDateTime
from clinicflow.store.db import Database, check_reachable, make_engine, transaction

__all__ = ["Base", "Database", "UTCDateTime", "check_reachable", "make_engine", "transaction"]
