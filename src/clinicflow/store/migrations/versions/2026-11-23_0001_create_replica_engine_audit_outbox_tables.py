"""Create the replica, engine, audit and outbox tables

Revision ID: 0001
Revises: (none: the first revision)
Create Date: 2026-11-23 06:52:04.147409
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import clinicflow.store.base
from clinicflow.store.audit import append_only_ddl, drop_append_only_ddl

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "appointments",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("start_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("minutes", sa.Integer(), nullable=True),
        sa.Column("booked_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("appointment_type", sa.String(length=32), nullable=True),
        sa.Column("service_type", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("patient_status", sa.String(length=24), nullable=True),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("slot_id", sa.String(length=64), nullable=True),
        sa.Column("cancel_reason", sa.String(length=32), nullable=True),
        sa.Column("requested_start_on", sa.Date(), nullable=True),
        sa.Column("requested_end_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_appointments")),
    )
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.create_index("ix_appointments_patient", ["patient_id"], unique=False)
        batch_op.create_index(
            "ix_appointments_practitioner_start", ["practitioner_id", "start_at"], unique=False
        )
        batch_op.create_index("ix_appointments_status_start", ["status", "start_at"], unique=False)

    op.create_table(
        "audit_log",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor_kind", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column(
            "resources",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "detail",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "actor_kind IN ('user', 'automation', 'system')", name=op.f("ck_audit_log_actor_kind")
        ),
        sa.CheckConstraint("seq >= 1", name=op.f("ck_audit_log_seq_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index(batch_op.f("ix_audit_log_at"), ["at"], unique=False)

    op.create_table(
        "automation_settings",
        sa.Column("automation", sa.String(length=100), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("updated_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("automation", name=op.f("pk_automation_settings")),
    )
    op.create_table(
        "communications",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("medium", sa.String(length=32), nullable=True),
        sa.Column("sent_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("received_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("from_patient", sa.Boolean(), nullable=False),
        sa.Column("sender_ref", sa.String(length=140), nullable=True),
        sa.Column("recipient_ref", sa.String(length=140), nullable=True),
        sa.Column("in_response_to", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_communications")),
    )
    with op.batch_alter_table("communications", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_communications_in_response_to"), ["in_response_to"], unique=False
        )
        batch_op.create_index(
            "ix_communications_patient_sent", ["patient_id", "sent_at"], unique=False
        )

    op.create_table(
        "coverages",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("payor_id", sa.String(length=64), nullable=True),
        sa.Column("period_start_on", sa.Date(), nullable=True),
        sa.Column("period_end_on", sa.Date(), nullable=True),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_coverages")),
    )
    with op.batch_alter_table("coverages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coverages_patient_id"), ["patient_id"], unique=False)

    op.create_table(
        "daily_hook_runs",
        sa.Column("hook", sa.String(length=100), nullable=False),
        sa.Column("day_on", sa.Date(), nullable=False),
        sa.Column("ran_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("hook", "day_on", name=op.f("pk_daily_hook_runs")),
    )
    op.create_table(
        "encounters",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("class_code", sa.String(length=16), nullable=True),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("start_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_encounters")),
    )
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_encounters_patient_start", ["patient_id", "start_at"], unique=False
        )

    op.create_table(
        "events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("resource_id", sa.String(length=64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("dispatched_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index("ix_events_dispatched_at_id", ["dispatched_at", "id"], unique=False)

    op.create_table(
        "fhir_resources",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("version_id", sa.String(length=64), nullable=True),
        sa.Column("last_updated", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("content_hash", sa.String(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("local_change", sa.Boolean(), nullable=False),
        sa.Column("base_hash", sa.String(length=32), nullable=True),
        sa.Column("ingested_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fhir_resources")),
        sa.UniqueConstraint(
            "resource_type", "fhir_id", name=op.f("uq_fhir_resources_resource_type_fhir_id")
        ),
    )
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.create_index("ix_fhir_resources_patient", ["patient_id"], unique=False)

    op.create_table(
        "locations",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("organization_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_locations")),
    )
    op.create_table(
        "lookup_index",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lookup_index")),
    )
    with op.batch_alter_table("lookup_index", schema=None) as batch_op:
        batch_op.create_index("ix_lookup_index_digest", ["kind", "digest"], unique=False)
        batch_op.create_index(
            "ix_lookup_index_resource", ["resource_type", "fhir_id"], unique=False
        )

    op.create_table(
        "organizations",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("type_code", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_organizations")),
    )
    op.create_table(
        "patients",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("gender", sa.String(length=16), nullable=True),
        sa.Column("birth_year", sa.Integer(), nullable=True),
        sa.Column("deceased", sa.Boolean(), nullable=False),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("language", sa.String(length=16), nullable=True),
        sa.Column("preferred_channel", sa.String(length=8), nullable=True),
        sa.Column("general_practitioner_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_patients")),
    )
    op.create_table(
        "pending_references",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("column", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=64), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_references")),
    )
    with op.batch_alter_table("pending_references", schema=None) as batch_op:
        batch_op.create_index(
            "ix_pending_references_source", ["resource_type", "fhir_id"], unique=False
        )

    op.create_table(
        "practitioner_roles",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("organization_id", sa.String(length=64), nullable=True),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("specialty_code", sa.String(length=32), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_practitioner_roles")),
    )
    with op.batch_alter_table("practitioner_roles", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_practitioner_roles_practitioner_id"), ["practitioner_id"], unique=False
        )

    op.create_table(
        "practitioners",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_practitioners")),
    )
    op.create_table(
        "sandbox_messages",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("effect_key", sa.String(length=300), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("for_ref", sa.String(length=128), nullable=True),
        sa.Column("recipient_enc", sa.LargeBinary(), nullable=False),
        sa.Column("subject_enc", sa.LargeBinary(), nullable=True),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("sent_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_messages")),
        sa.UniqueConstraint("uid", name=op.f("uq_sandbox_messages_uid")),
    )
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_sandbox_messages_effect_key"), ["effect_key"], unique=False
        )

    op.create_table(
        "schedule_cursors",
        sa.Column("automation", sa.String(length=100), nullable=False),
        sa.Column(
            "evaluated_until", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("automation", name=op.f("pk_schedule_cursors")),
    )
    op.create_table(
        "schedules",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("practitioner_id", sa.String(length=64), nullable=True),
        sa.Column("location_id", sa.String(length=64), nullable=True),
        sa.Column("service_type", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_schedules_practitioner_id"), ["practitioner_id"], unique=False
        )

    op.create_table(
        "slots",
        sa.Column("fhir_id", sa.String(length=64), nullable=False),
        sa.Column("schedule_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("start_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("fhir_id", name=op.f("pk_slots")),
    )
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.create_index("ix_slots_schedule_start", ["schedule_id", "start_at"], unique=False)
        batch_op.create_index("ix_slots_status_start", ["status", "start_at"], unique=False)

    op.create_table(
        "sync_checkpoints",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("resource_type", sa.String(length=64), nullable=False),
        sa.Column("high_water_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("updated_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_checkpoints")),
        sa.UniqueConstraint(
            "source", "resource_type", name=op.f("uq_sync_checkpoints_source_resource_type")
        ),
    )
    op.create_table(
        "audit_resource",
        sa.Column("ref", sa.String(length=200), nullable=False),
        sa.Column("seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.ForeignKeyConstraint(
            ["seq"], ["audit_log.seq"], name=op.f("fk_audit_resource_seq_audit_log")
        ),
        sa.PrimaryKeyConstraint("ref", "seq", name=op.f("pk_audit_resource")),
    )
    op.create_table(
        "automation_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("automation", sa.String(length=100), nullable=False),
        sa.Column("trigger_kind", sa.String(length=16), nullable=False),
        sa.Column("trigger_key", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=False),
        sa.Column(
            "scheduled_for", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("created_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("enqueued_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_expires_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("units", sa.JSON(), nullable=False),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_automation_runs_event_id_events")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_automation_runs")),
        sa.UniqueConstraint(
            "automation", "trigger_key", name=op.f("uq_automation_runs_automation_trigger_key")
        ),
    )
    with op.batch_alter_table("automation_runs", schema=None) as batch_op:
        batch_op.create_index(
            "ix_automation_runs_automation_created", ["automation", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_automation_runs_state_enqueued", ["state", "enqueued_at"], unique=False
        )

    op.create_table(
        "work_items",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column("pool", sa.String(length=64), nullable=False),
        sa.Column("owner_user", sa.String(length=100), nullable=True),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("due_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("focus", sa.String(length=128), nullable=True),
        sa.Column("for_ref", sa.String(length=128), nullable=True),
        sa.Column("description_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.Column(
            "source_run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("source_effect_key", sa.String(length=300), nullable=True),
        sa.ForeignKeyConstraint(
            ["source_run_id"],
            ["automation_runs.id"],
            name=op.f("fk_work_items_source_run_id_automation_runs"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_items")),
        sa.UniqueConstraint("key", name=op.f("uq_work_items_key")),
    )
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.create_index("ix_work_items_status_pool", ["status", "pool"], unique=False)

    op.create_table(
        "effects",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("automation", sa.String(length=100), nullable=False),
        sa.Column("reaches_patient", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("payload_enc", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("enqueued_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column(
            "lease_expires_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("created_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.Column("error_code", sa.String(length=100), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "work_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["automation_runs.id"], name=op.f("fk_effects_run_id_automation_runs")
        ),
        sa.ForeignKeyConstraint(
            ["work_item_id"], ["work_items.id"], name=op.f("fk_effects_work_item_id_work_items")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_effects")),
        sa.UniqueConstraint("key", name=op.f("uq_effects_key")),
    )
    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.create_index("ix_effects_run_id", ["run_id"], unique=False)
        batch_op.create_index("ix_effects_state_lease", ["state", "lease_expires_at"], unique=False)

    op.create_table(
        "work_item_notes",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column(
            "work_item_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("author", sa.String(length=100), nullable=False),
        sa.Column("body_enc", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", clinicflow.store.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_item_id"],
            ["work_items.id"],
            name=op.f("fk_work_item_notes_work_item_id_work_items"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_item_notes")),
        sa.UniqueConstraint("uid", name=op.f("uq_work_item_notes_uid")),
    )
    with op.batch_alter_table("work_item_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_work_item_notes_work_item_id"), ["work_item_id"], unique=False
        )

    # The audit log is append-only in the database itself (UPDATE and DELETE are refused).
    for statement in append_only_ddl(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_append_only_ddl(op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table("work_item_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_work_item_notes_work_item_id"))

    op.drop_table("work_item_notes")
    with op.batch_alter_table("effects", schema=None) as batch_op:
        batch_op.drop_index("ix_effects_state_lease")
        batch_op.drop_index("ix_effects_run_id")

    op.drop_table("effects")
    with op.batch_alter_table("work_items", schema=None) as batch_op:
        batch_op.drop_index("ix_work_items_status_pool")

    op.drop_table("work_items")
    with op.batch_alter_table("automation_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_automation_runs_state_enqueued")
        batch_op.drop_index("ix_automation_runs_automation_created")

    op.drop_table("automation_runs")
    op.drop_table("audit_resource")
    op.drop_table("sync_checkpoints")
    with op.batch_alter_table("slots", schema=None) as batch_op:
        batch_op.drop_index("ix_slots_status_start")
        batch_op.drop_index("ix_slots_schedule_start")

    op.drop_table("slots")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_schedules_practitioner_id"))

    op.drop_table("schedules")
    op.drop_table("schedule_cursors")
    with op.batch_alter_table("sandbox_messages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_sandbox_messages_effect_key"))

    op.drop_table("sandbox_messages")
    op.drop_table("practitioners")
    with op.batch_alter_table("practitioner_roles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_practitioner_roles_practitioner_id"))

    op.drop_table("practitioner_roles")
    with op.batch_alter_table("pending_references", schema=None) as batch_op:
        batch_op.drop_index("ix_pending_references_source")

    op.drop_table("pending_references")
    op.drop_table("patients")
    op.drop_table("organizations")
    with op.batch_alter_table("lookup_index", schema=None) as batch_op:
        batch_op.drop_index("ix_lookup_index_resource")
        batch_op.drop_index("ix_lookup_index_digest")

    op.drop_table("lookup_index")
    op.drop_table("locations")
    with op.batch_alter_table("fhir_resources", schema=None) as batch_op:
        batch_op.drop_index("ix_fhir_resources_patient")

    op.drop_table("fhir_resources")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_dispatched_at_id")

    op.drop_table("events")
    with op.batch_alter_table("encounters", schema=None) as batch_op:
        batch_op.drop_index("ix_encounters_patient_start")

    op.drop_table("encounters")
    op.drop_table("daily_hook_runs")
    with op.batch_alter_table("coverages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coverages_patient_id"))

    op.drop_table("coverages")
    with op.batch_alter_table("communications", schema=None) as batch_op:
        batch_op.drop_index("ix_communications_patient_sent")
        batch_op.drop_index(batch_op.f("ix_communications_in_response_to"))

    op.drop_table("communications")
    op.drop_table("automation_settings")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_log_at"))
        batch_op.drop_index("ix_audit_log_actor_at")

    op.drop_table("audit_log")
    with op.batch_alter_table("appointments", schema=None) as batch_op:
        batch_op.drop_index("ix_appointments_status_start")
        batch_op.drop_index("ix_appointments_practitioner_start")
        batch_op.drop_index("ix_appointments_patient")

    op.drop_table("appointments")
