"""Searching the audit log, for compliance: by person, patient, action and time.

A patient search goes through `audit_resource` (the index of which rows name which resources), so
"who looked at this patient" is one index lookup however long the log is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.store.audit import AuditLog, AuditResource

__all__ = ["AuditEntry", "AuditQuery", "search_audit"]

SHOWN_REFS = 12  # a sync batch names thousands; the page shows the first few and the count


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What to look for; empty fields match everything."""

    actor: str | None = None
    patient_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audit row as the page shows it."""

    seq: int
    at: datetime
    actor_kind: str
    actor: str
    action: str
    resources: tuple[str, ...]
    resource_count: int
    detail: dict[str, Any]


def search_audit(session: Session, query: AuditQuery) -> list[AuditEntry]:
    """Matching rows, newest first."""
    stmt = select(AuditLog).order_by(AuditLog.seq.desc()).limit(max(1, min(query.limit, 1000)))
    if query.patient_id:
        stmt = stmt.join(AuditResource, AuditResource.seq == AuditLog.seq).where(
            AuditResource.ref == f"Patient/{query.patient_id}"
        )
    if query.actor:
        stmt = stmt.where(AuditLog.actor == query.actor)
    if query.action:
        stmt = stmt.where(AuditLog.action == query.action)
    if query.since:
        stmt = stmt.where(AuditLog.at >= query.since)
    if query.until:
        stmt = stmt.where(AuditLog.at < query.until)
    return [
        AuditEntry(
            seq=row.seq,
            at=row.at,
            actor_kind=row.actor_kind,
            actor=row.actor,
            action=row.action,
            resources=tuple(row.resources[:SHOWN_REFS]),
            resource_count=len(row.resources),
            detail=dict(row.detail),
        )
        for row in session.scalars(stmt)
    ]
