"""Auditing what a person saw: one audit row per page view or API call that showed PHI.

A list view writes one row naming everything listed (not one row per patient). Its index under the
patients it showed is built in batches by `catch_up_audit_index` (the worker's `audit-index` job,
and every search by patient first), so "who looked at this patient" stays one exact index lookup
without hundreds of index writes on every page view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session

from clinicflow.security.audit import auditable, record_access
from clinicflow.web.auth import Staff

__all__ = ["audit_view", "view_detail"]


def view_detail(staff: Staff, view: str, path: str, **extra: Any) -> dict[str, Any]:
    """What an audit row says of a view besides who and which resources: page, address, how."""
    return {"view": view, "path": path[:200], "address": staff.address, "via": staff.via, **extra}


def audit_view(
    session: Session,
    staff: Staff,
    *,
    view: str,
    resources: Iterable[str | None],
    patients: Iterable[str | None],
    path: str,
) -> None:
    """Record that `staff` saw `resources` (ids only) of `patients` on `view`, from where."""
    refs = auditable(resources)
    patient_refs = auditable(f"Patient/{p}" if p and "/" not in p else p for p in patients)
    record_access(
        session,
        staff.actor,
        "read",
        list(dict.fromkeys([*refs, *patient_refs])),
        at=staff.seen_at,
        detail=view_detail(staff, view, path, count=len(patient_refs)),
        index_later=True,
    )
