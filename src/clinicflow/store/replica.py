"""The replica: every ingested FHIR resource (encrypted body) plus typed, indexed query columns.

Typed tables are keyed by the FHIR id of their resource type and hold no direct identifiers
(no names, phone numbers, emails, addresses, birth dates or MRNs): those stay inside the encrypted
body, and lookups by them go through `lookup_index`, a table of keyed hashes (a blind index).
References between typed tables are FHIR ids of the target type, resolved at ingest.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from clinicflow.security.registry import register_encrypted_column
from clinicflow.store.base import Base, UTCDateTime

FHIR_ID = 64  # FHIR R4 ids are at most 64 characters ([A-Za-z0-9\-\.]{1,64})
TYPE_NAME = 64


class FhirResource(Base):
    """One FHIR resource as last ingested or written: encrypted JSON body and bookkeeping."""

    __tablename__ = "fhir_resources"
    __table_args__ = (
        UniqueConstraint("resource_type", "fhir_id"),
        Index("ix_fhir_resources_patient", "patient_id"),
        # Every status page counts local changes; without this it scans every encrypted body.
        Index("ix_fhir_resources_local_change", "local_change"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(TYPE_NAME))
    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID))
    version_id: Mapped[str | None] = mapped_column(String(64))
    last_updated: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Keyed hash of the canonical body: says whether anything changed without revealing content.
    content_hash: Mapped[str] = mapped_column(String(32))
    body: Mapped[bytes] = mapped_column(LargeBinary)
    # The patient compartment this resource belongs to, so "everything about Patient/x" is a query.
    patient_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    source: Mapped[str] = mapped_column(String(16))  # folder | fhir | bulk | local
    # True when clinicflow changed this resource and no EHR has accepted the change
    # (no EHR connected).
    local_change: Mapped[bool] = mapped_column(Boolean, default=False)
    # For a local change: the content hash of the EHR's version it was made on. A later sync that
    # brings that same version back changes nothing; the local change stands.
    base_hash: Mapped[str | None] = mapped_column(String(32))
    # When the EHR stopped returning this resource (deleted, or hidden once entered-in-error). The
    # body stays for the record; its typed row is gone, so automations no longer see it.
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ingested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LookupIndex(Base):
    """Blind index: keyed hashes of phones, emails, names and identifiers, each to a resource."""

    __tablename__ = "lookup_index"
    __table_args__ = (
        Index("ix_lookup_index_digest", "kind", "digest"),
        Index("ix_lookup_index_resource", "resource_type", "fhir_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # phone | email | name | identifier
    digest: Mapped[str] = mapped_column(String(32))
    resource_type: Mapped[str] = mapped_column(String(TYPE_NAME))
    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID))


class PendingReference(Base):
    """A conditional reference (`Practitioner?identifier=...`) whose target was not yet ingested."""

    __tablename__ = "pending_references"
    __table_args__ = (Index("ix_pending_references_source", "resource_type", "fhir_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_type: Mapped[str] = mapped_column(String(TYPE_NAME))
    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID))
    column: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(TYPE_NAME))
    digest: Mapped[str] = mapped_column(String(32))


class Patient(Base):
    """Query columns of a Patient; identifying fields live only in the encrypted body."""

    __tablename__ = "patients"

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    gender: Mapped[str | None] = mapped_column(String(16))
    birth_year: Mapped[int | None] = mapped_column(Integer)
    deceased: Mapped[bool] = mapped_column(Boolean, default=False)
    time_zone: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(16))
    preferred_channel: Mapped[str | None] = mapped_column(String(8))  # sms | email | phone
    general_practitioner_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    # Patient.link replaced-by: the record this one was merged into (the EHR's merge). Rows about
    # this patient in the other typed tables name the surviving record, so automations see one
    # person; fhir_resources.patient_id keeps the compartment the EHR wrote, so a merge can be
    # undone.
    replaced_by: Mapped[str | None] = mapped_column(String(FHIR_ID), index=True)


class Practitioner(Base):
    """Query columns of a Practitioner."""

    __tablename__ = "practitioners"

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class PractitionerRole(Base):
    """Query columns of a PractitionerRole: who works where, in which specialty."""

    __tablename__ = "practitioner_roles"

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    practitioner_id: Mapped[str | None] = mapped_column(String(FHIR_ID), index=True)
    organization_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    location_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    specialty_code: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Organization(Base):
    """Query columns of an Organization (the practice, payers, referral targets)."""

    __tablename__ = "organizations"

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    type_code: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Location(Base):
    """Query columns of a Location."""

    __tablename__ = "locations"

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    status: Mapped[str | None] = mapped_column(String(16))
    time_zone: Mapped[str | None] = mapped_column(String(64))
    organization_id: Mapped[str | None] = mapped_column(String(FHIR_ID))


class Schedule(Base):
    """Query columns of a Schedule: whose calendar, where."""

    __tablename__ = "schedules"

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    practitioner_id: Mapped[str | None] = mapped_column(String(FHIR_ID), index=True)
    location_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    service_type: Mapped[str | None] = mapped_column(String(64))


class Slot(Base):
    """Query columns of a Slot."""

    __tablename__ = "slots"
    __table_args__ = (
        Index("ix_slots_schedule_start", "schedule_id", "start_at"),
        Index("ix_slots_status_start", "status", "start_at"),
    )

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    schedule_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    status: Mapped[str] = mapped_column(String(24))
    start_at: Mapped[datetime] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Appointment(Base):
    """Query columns of an Appointment, including waitlist entries (status `waitlist`)."""

    __tablename__ = "appointments"
    __table_args__ = (
        Index("ix_appointments_status_start", "status", "start_at"),
        Index("ix_appointments_practitioner_start", "practitioner_id", "start_at"),
        # By start too: riders are read per patient for a window, and most of a patient's
        # appointments (the past ones) are outside it.
        Index("ix_appointments_patient_start", "patient_id", "start_at"),
    )

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    status: Mapped[str] = mapped_column(String(24))
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    minutes: Mapped[int | None] = mapped_column(Integer)
    booked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # Appointment.created
    appointment_type: Mapped[str | None] = mapped_column(String(32))
    service_type: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    patient_status: Mapped[str | None] = mapped_column(String(24))  # participant status
    practitioner_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    location_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    slot_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    cancel_reason: Mapped[str | None] = mapped_column(String(32))
    requested_start_on: Mapped[date | None] = mapped_column(Date)
    requested_end_on: Mapped[date | None] = mapped_column(Date)


class Communication(Base):
    """Query columns of a Communication (portal messages, SMS and email threads)."""

    __tablename__ = "communications"
    __table_args__ = (Index("ix_communications_patient_sent", "patient_id", "sent_at"),)

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    status: Mapped[str] = mapped_column(String(24))
    category: Mapped[str | None] = mapped_column(String(64))
    medium: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    patient_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    from_patient: Mapped[bool] = mapped_column(Boolean, default=False)
    sender_ref: Mapped[str | None] = mapped_column(String(140))
    recipient_ref: Mapped[str | None] = mapped_column(String(140))
    in_response_to: Mapped[str | None] = mapped_column(String(FHIR_ID), index=True)


class Coverage(Base):
    """Query columns of a Coverage (insurance), for eligibility checks."""

    __tablename__ = "coverages"

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    status: Mapped[str] = mapped_column(String(24))
    patient_id: Mapped[str | None] = mapped_column(String(FHIR_ID), index=True)
    payor_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    period_start_on: Mapped[date | None] = mapped_column(Date)
    period_end_on: Mapped[date | None] = mapped_column(Date)


class Encounter(Base):
    """Query columns of an Encounter (prior visits)."""

    __tablename__ = "encounters"
    __table_args__ = (Index("ix_encounters_patient_start", "patient_id", "start_at"),)

    fhir_id: Mapped[str] = mapped_column(String(FHIR_ID), primary_key=True)
    status: Mapped[str] = mapped_column(String(24))
    class_code: Mapped[str | None] = mapped_column(String(16))
    patient_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    practitioner_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    location_id: Mapped[str | None] = mapped_column(String(FHIR_ID))
    start_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    end_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


# The checkpoint row, per source, that records the last successful sync as a whole: its mark is
# what the replica is current as of, its updated_at when that sync finished.
WHOLE_SYNC_TYPE = "*"


class SyncCheckpoint(Base):
    """High-water marks for incremental sync, per source and resource type."""

    __tablename__ = "sync_checkpoints"
    __table_args__ = (UniqueConstraint("source", "resource_type"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(200))
    resource_type: Mapped[str] = mapped_column(String(TYPE_NAME))
    high_water_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReplicaGeneration(Base):
    """A counter per resource type, bumped by every replica write that changes that type.

    Readers that keep derived state (the reminder planner's marks) compare it with the value they
    last saw instead of rescanning the replica. Writers bump it under the replica lock
    (`lock_replica`), in the transaction that writes, so a reader that sees generation N also sees
    every write that made it.
    """

    __tablename__ = "replica_generations"

    resource_type: Mapped[str] = mapped_column(String(TYPE_NAME), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0)


# The typed table for each resource type that has one. Other types live in fhir_resources only.
TYPED_TABLES: dict[str, type[Base]] = {
    "Patient": Patient,
    "Practitioner": Practitioner,
    "PractitionerRole": PractitionerRole,
    "Organization": Organization,
    "Location": Location,
    "Schedule": Schedule,
    "Slot": Slot,
    "Appointment": Appointment,
    "Communication": Communication,
    "Coverage": Coverage,
    "Encounter": Encounter,
}


register_encrypted_column(
    FhirResource.__table__,
    "body",
    lambda row: f"{row.resource_type}/{row.fhir_id}".encode(),
)


def replica_tables() -> list[Table]:
    """Every table a sync writes: resources, blind index, pending references and typed tables."""
    models: list[type[Base]] = [FhirResource, LookupIndex, PendingReference, *TYPED_TABLES.values()]
    return [model.__table__ for model in models]  # type: ignore[misc]  # Tables, typed FromClause
