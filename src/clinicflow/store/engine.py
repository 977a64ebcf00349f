"""Tables of the automation engine: runs, effects, events, work items, switches, sandbox outbox.

States are plain strings checked in code (`clinicflow.engine.states`), not database enums, so
adding a state is a code change and never an `ALTER TYPE`. Bodies that may hold PHI are `*_enc`
columns, encrypted with the PHI cipher and bound (AAD) to a value of their own row; the AAD
functions live here, beside the tables, and are registered for key rotation.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.security.registry import register_encrypted_column
from clinicflow.store.base import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a bigint identity.
IdType = BigInteger().with_variant(Integer(), "sqlite")


class AutomationRun(Base):
    """One run of an automation; (automation, trigger_key) is unique so no run is created twice."""

    __tablename__ = "automation_runs"
    __table_args__ = (
        UniqueConstraint("automation", "trigger_key"),
        Index("ix_automation_runs_state_enqueued", "state", "enqueued_at"),
        Index("ix_automation_runs_automation_created", "automation", "created_at"),
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    automation: Mapped[str] = mapped_column(String(100))
    trigger_kind: Mapped[str] = mapped_column(String(16))
    trigger_key: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("events.id"))
    # A coalescing run's events (the first is `event_id`); None for a run of one event.
    event_ids: Mapped[list[int] | None] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(String(16))
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    requested_by: Mapped[str] = mapped_column(String(100))
    scheduled_for: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    units: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)


class Effect(Base):
    """Something a run asked for (message, write-back, work item), carried out after it commits."""

    __tablename__ = "effects"
    __table_args__ = (
        Index("ix_effects_state_lease", "state", "lease_expires_at"),
        Index("ix_effects_run_id", "run_id"),
        Index("ix_effects_focus", "focus"),  # the state is tested on the rows (migration 0013)
    )

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int] = mapped_column(ForeignKey("automation_runs.id"))
    automation: Mapped[str] = mapped_column(String(100))
    reaches_patient: Mapped[bool] = mapped_column(Boolean)
    state: Mapped[str] = mapped_column(String(16))
    summary: Mapped[str] = mapped_column(String(300), default="")
    payload_enc: Mapped[bytes] = mapped_column(LargeBinary)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, object] | None] = mapped_column(JSON)
    error_code: Mapped[str | None] = mapped_column(String(100))
    error_message: Mapped[str | None] = mapped_column(Text)
    work_item_id: Mapped[int | None] = mapped_column(ForeignKey("work_items.id"))
    # What the effect acts on, as in FHIR Task.focus ("Appointment/123"): when that goes away,
    # what has not gone out yet is voided (a reminder for a deleted visit must never be sent).
    focus: Mapped[str | None] = mapped_column(String(128))
    # The provider's id for what a sent effect created (Twilio's MessageSid, an e-mail's
    # Message-ID), so a status callback finds its effect; and the provider's latest news of it.
    provider_ref: Mapped[str | None] = mapped_column(String(200), index=True)
    delivery_status: Mapped[str | None] = mapped_column(String(32))


class Event(Base):
    """A change automations may react to, written in the same transaction as the change (outbox)."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_dispatched_at_id", "dispatched_at", "id"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(100))
    resource_type: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class WorkItem(Base):
    """A task for a person, shaped like FHIR Task (status, pool, owner, priority, focus, for)."""

    __tablename__ = "work_items"
    __table_args__ = (Index("ix_work_items_status_pool", "status", "pool"),)

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str | None] = mapped_column(String(200))
    pool: Mapped[str] = mapped_column(String(64))
    owner_user: Mapped[str | None] = mapped_column(String(100))
    priority: Mapped[str] = mapped_column(String(8))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    focus: Mapped[str | None] = mapped_column(String(128))
    for_ref: Mapped[str | None] = mapped_column(String(128))
    description_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_by: Mapped[str] = mapped_column(String(100))
    source_run_id: Mapped[int | None] = mapped_column(ForeignKey("automation_runs.id"))
    source_effect_key: Mapped[str | None] = mapped_column(String(300))


class WorkItemNote(Base):
    """A note on a work item; the body may hold PHI and is bound to the note's own uid."""

    __tablename__ = "work_item_notes"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    work_item_id: Mapped[int] = mapped_column(ForeignKey("work_items.id"), index=True)
    author: Mapped[str] = mapped_column(String(100))
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AutomationSetting(Base):
    """Per-automation switches set by the automation team; no row means the defaults."""

    __tablename__ = "automation_settings"

    automation: Mapped[str] = mapped_column(String(100), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    owner: Mapped[str | None] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))


class ScheduleCursor(Base):
    """Up to which instant an automation's cron schedule has been evaluated."""

    __tablename__ = "schedule_cursors"

    automation: Mapped[str] = mapped_column(String(100), primary_key=True)
    evaluated_until: Mapped[datetime] = mapped_column(UTCDateTime)


class DailyHookRun(Base):
    """A daily hook that ran for a practice-local day; the primary key makes it once a day."""

    __tablename__ = "daily_hook_runs"

    hook: Mapped[str] = mapped_column(String(100), primary_key=True)
    day_on: Mapped[date] = mapped_column(Date, primary_key=True)
    ran_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PeriodicJob(Base):
    """A job a worker runs every so often (the EHR sync): its lease and how its last run went."""

    __tablename__ = "periodic_jobs"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_summary: Mapped[dict[str, object] | None] = mapped_column(JSON)


class SandboxMessage(Base):
    """A message the sandbox channel "delivered"; effect_key is deliberately not unique."""

    __tablename__ = "sandbox_messages"

    id: Mapped[int] = mapped_column(IdType, primary_key=True, autoincrement=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)
    effect_key: Mapped[str] = mapped_column(String(300), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    for_ref: Mapped[str | None] = mapped_column(String(128))
    recipient_enc: Mapped[bytes] = mapped_column(LargeBinary)
    subject_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    body_enc: Mapped[bytes] = mapped_column(LargeBinary)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)


def effect_payload_aad(key: str) -> bytes:
    """AAD of an effect's payload: its idempotency key."""
    return f"effect:{key}".encode()


def work_item_description_aad(key: str) -> bytes:
    """AAD of a work item's description: the work item's key."""
    return f"work_item:{key}".encode()


def work_item_note_aad(uid: str) -> bytes:
    """AAD of a note's body: the note's uid."""
    return f"work_item_note:{uid}".encode()


def sandbox_message_aad(uid: str, part: str) -> bytes:
    """AAD of one part ("to", "subject", "body") of a sandbox message."""
    return f"sandbox_message:{uid}:{part}".encode()


register_encrypted_column(Effect.__table__, "payload_enc", lambda r: effect_payload_aad(r.key))
register_encrypted_column(
    WorkItem.__table__, "description_enc", lambda r: work_item_description_aad(r.key)
)
register_encrypted_column(WorkItemNote.__table__, "body_enc", lambda r: work_item_note_aad(r.uid))
register_encrypted_column(
    SandboxMessage.__table__, "recipient_enc", lambda r: sandbox_message_aad(r.uid, "to")
)
register_encrypted_column(
    SandboxMessage.__table__, "subject_enc", lambda r: sandbox_message_aad(r.uid, "subject")
)
register_encrypted_column(
    SandboxMessage.__table__, "body_enc", lambda r: sandbox_message_aad(r.uid, "body")
)
