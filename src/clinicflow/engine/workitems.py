"""Work items: tasks for people, shaped like FHIR Task. Services take a Session and never commit.

Descriptions and notes may hold PHI, so they are encrypted; a description is bound to its work
item's key and a note to its own uid, so a ciphertext moved to another row fails to decrypt.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import case, select
from sqlalchemy.orm import Session

from clinicflow.engine.states import OPEN_WORK_ITEM_STATUSES, Priority, WorkItemId, WorkItemStatus
from clinicflow.engine.upsert import insert_returning_id
from clinicflow.errors import EngineError
from clinicflow.security.audit import Actor, auditable, record_access
from clinicflow.security.phi import PhiCipher
from clinicflow.store.engine import (
    WorkItem,
    WorkItemNote,
    work_item_description_aad,
    work_item_note_aad,
)

S = WorkItemStatus
# action -> (statuses it may start from, status it leads to)
TRANSITIONS: dict[str, tuple[frozenset[WorkItemStatus], WorkItemStatus]] = {
    "claim": (frozenset({S.REQUESTED, S.ON_HOLD}), S.ACCEPTED),
    "start": (frozenset({S.ACCEPTED, S.ON_HOLD}), S.IN_PROGRESS),
    "hold": (frozenset({S.REQUESTED, S.ACCEPTED, S.IN_PROGRESS}), S.ON_HOLD),
    "complete": (OPEN_WORK_ITEM_STATUSES, S.COMPLETED),
    "cancel": (OPEN_WORK_ITEM_STATUSES, S.CANCELLED),
    "hand_over": (OPEN_WORK_ITEM_STATUSES, S.REQUESTED),
}
_PRIORITY_RANK = {Priority.STAT: 0, Priority.ASAP: 1, Priority.URGENT: 2, Priority.ROUTINE: 3}


def next_status(current: WorkItemStatus, action: str) -> WorkItemStatus:
    """The status after `action`; EngineError when the action does not apply (pure)."""
    sources, target = TRANSITIONS[action]
    if current not in sources:
        raise EngineError(
            f"This work item is {current.value}; it cannot be {action.replace('_', ' ')}ed now.",
            code="work_item.bad_transition",
        )
    return target


@dataclass(frozen=True, slots=True)
class Note:
    """A note on a work item, in clear."""

    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WorkItemView:
    """A work item as a person sees it (description decrypted)."""

    id: WorkItemId
    key: str
    status: WorkItemStatus
    status_reason: str | None
    pool: str
    owner_user: str | None
    priority: Priority
    due_at: datetime | None
    focus: str | None
    for_ref: str | None
    description: str
    created_at: datetime
    updated_at: datetime
    source_run_id: int | None
    source_effect_key: str | None
    notes: tuple[Note, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenedWorkItem:
    """The work item for a key, and whether this call created it."""

    id: WorkItemId
    created: bool


def open_work_item(
    session: Session,
    cipher: PhiCipher,
    *,
    key: str,
    pool: str,
    description: str,
    actor: str,
    now: datetime,
    priority: Priority = Priority.ROUTINE,
    due_at: datetime | None = None,
    focus: str | None = None,
    for_ref: str | None = None,
    source_run_id: int | None = None,
    source_effect_key: str | None = None,
) -> OpenedWorkItem:
    """Open a work item for `key` unless one exists (whatever its status): idempotent by key."""
    values: dict[str, Any] = {
        "key": key,
        "status": S.REQUESTED.value,
        "pool": pool,
        "priority": priority.value,
        "due_at": due_at,
        "focus": focus,
        "for_ref": for_ref,
        "description_enc": cipher.encrypt(description.encode(), work_item_description_aad(key)),
        "created_at": now,
        "updated_at": now,
        "created_by": actor,
        "updated_by": actor,
        "source_run_id": source_run_id,
        "source_effect_key": source_effect_key,
    }
    new_id = insert_returning_id(session, WorkItem, values, ["key"])
    if new_id is not None:
        _audit(session, actor, "create", new_id, focus, for_ref, now)
        return OpenedWorkItem(WorkItemId(new_id), created=True)
    existing = session.scalar(select(WorkItem.id).where(WorkItem.key == key))
    return OpenedWorkItem(WorkItemId(int(existing or 0)), created=False)


def _load(session: Session, item_id: WorkItemId) -> WorkItem:
    item = session.get(WorkItem, item_id, with_for_update=True)
    if item is None:
        raise EngineError(f"There is no work item {item_id}.", code="work_item.not_found")
    return item


def _move(item: WorkItem, action: str, *, actor: str, now: datetime) -> None:
    item.status = next_status(WorkItemStatus(item.status), action).value
    item.updated_at = now
    item.updated_by = actor


def claim_work_item(session: Session, item_id: WorkItemId, *, user: str, now: datetime) -> None:
    """`user` takes the work item; refused if someone else already holds it."""
    item = _load(session, item_id)
    if item.owner_user not in (None, user) and item.status != S.ON_HOLD:
        raise EngineError(
            f"Work item {item_id} is already taken by {item.owner_user}.",
            code="work_item.taken",
        )
    _move(item, "claim", actor=user, now=now)
    item.owner_user = user


def start_work_item(session: Session, item_id: WorkItemId, *, user: str, now: datetime) -> None:
    """Mark the work item in progress."""
    _move(_load(session, item_id), "start", actor=user, now=now)


def hold_work_item(
    session: Session, item_id: WorkItemId, *, user: str, now: datetime, reason: str | None = None
) -> None:
    """Put the work item on hold (e.g. waiting for the patient to call back)."""
    item = _load(session, item_id)
    _move(item, "hold", actor=user, now=now)
    item.status_reason = reason


def resolve_work_item(
    session: Session,
    item_id: WorkItemId,
    *,
    user: str,
    now: datetime,
    cancelled: bool = False,
    reason: str | None = None,
) -> None:
    """Close the work item as completed (or cancelled), with an optional reason without PHI."""
    item = _load(session, item_id)
    _move(item, "cancel" if cancelled else "complete", actor=user, now=now)
    item.status_reason = reason


def hand_to_pool(
    session: Session, item_id: WorkItemId, *, pool: str, actor: str, now: datetime
) -> None:
    """Give the work item to another pool; it waits there unowned."""
    item = _load(session, item_id)
    _move(item, "hand_over", actor=actor, now=now)
    item.pool = pool
    item.owner_user = None


def add_note(
    session: Session,
    cipher: PhiCipher,
    item_id: WorkItemId,
    *,
    author: str,
    text: str,
    now: datetime,
) -> None:
    """Append an encrypted note to the work item."""
    item = _load(session, item_id)
    uid = uuid.uuid4().hex
    body = cipher.encrypt(text.encode(), work_item_note_aad(uid))
    session.add(
        WorkItemNote(uid=uid, work_item_id=item.id, author=author, body_enc=body, created_at=now)
    )
    item.updated_at = now
    item.updated_by = author
    _audit(session, author, "update", item.id, item.focus, item.for_ref, now)


def _audit(
    session: Session,
    actor: str,
    action: str,
    item_id: int,
    focus: str | None,
    for_ref: str | None,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """Work item texts may hold PHI: every read and write of them is in the audit log."""
    refs = auditable([f"WorkItem/{item_id}", focus, for_ref])
    record_access(session, Actor.from_label(actor), action, refs, at=now, detail=detail)


def _view(cipher: PhiCipher, item: WorkItem, notes: tuple[Note, ...] = ()) -> WorkItemView:
    return WorkItemView(
        id=WorkItemId(item.id),
        key=item.key,
        status=WorkItemStatus(item.status),
        status_reason=item.status_reason,
        pool=item.pool,
        owner_user=item.owner_user,
        priority=Priority(item.priority),
        due_at=item.due_at,
        focus=item.focus,
        for_ref=item.for_ref,
        description=cipher.decrypt(
            item.description_enc, work_item_description_aad(item.key)
        ).decode(),
        created_at=item.created_at,
        updated_at=item.updated_at,
        source_run_id=item.source_run_id,
        source_effect_key=item.source_effect_key,
        notes=notes,
    )


def get_work_item(
    session: Session,
    cipher: PhiCipher,
    item_id: WorkItemId,
    *,
    reader: str,
    now: datetime,
    detail: Mapping[str, Any] | None = None,
) -> WorkItemView:
    """One work item with its notes, decrypted; the read is audited under `reader` (with
    `detail`, e.g. the page and address it was read from)."""
    item = session.get(WorkItem, item_id)
    if item is None:
        raise EngineError(f"There is no work item {item_id}.", code="work_item.not_found")
    _audit(session, reader, "read", item.id, item.focus, item.for_ref, now, detail)
    rows = session.scalars(
        select(WorkItemNote).where(WorkItemNote.work_item_id == item_id).order_by(WorkItemNote.id)
    )
    notes = tuple(
        Note(n.author, cipher.decrypt(n.body_enc, work_item_note_aad(n.uid)).decode(), n.created_at)
        for n in rows
    )
    return _view(cipher, item, notes)


def list_open(
    session: Session,
    cipher: PhiCipher,
    *,
    reader: str,
    now: datetime,
    pool: str | None = None,
    limit: int = 200,
    detail: Mapping[str, Any] | None = None,
) -> list[WorkItemView]:
    """Open work items (of one pool, if given), most pressing first; the read is audited (one
    row for the list, with `detail`)."""
    rank = case(_PRIORITY_RANK, value=WorkItem.priority, else_=9)
    stmt = select(WorkItem).where(WorkItem.status.in_([s.value for s in OPEN_WORK_ITEM_STATUSES]))
    if pool is not None:
        stmt = stmt.where(WorkItem.pool == pool)
    stmt = stmt.order_by(rank, WorkItem.due_at.is_(None), WorkItem.due_at, WorkItem.id).limit(limit)
    items = list(session.scalars(stmt))
    if items:
        refs = auditable(
            [f"WorkItem/{item.id}" for item in items]
            + [r for item in items for r in (item.focus, item.for_ref)]
        )
        record_access(session, Actor.from_label(reader), "read", refs, at=now, detail=detail)
    return [_view(cipher, item) for item in items]
