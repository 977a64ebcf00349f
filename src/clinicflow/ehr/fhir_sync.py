"""`sync fhir`: keep the replica current from a live FHIR server.

Two ways in, one way down: a system-level Bulk Data `$export` when the server's
CapabilityStatement offers it, paged searches of the types automations need otherwise; both feed
`ingest_stream`, the path a folder sync takes, so the same checks, events and audit apply. An
export may also be asked for at Patient level (every patient's records) or Group level (the
records of one Group's member patients).

High-water marks live in `sync_checkpoints`, one per resource type and server. They move only
past data that is committed, so a sync that dies halfway starts again from the last mark: what it
fetches twice is recognised as unchanged (no second row, no second event), and nothing is skipped.
A Patient- or Group-level export covers only part of the server, so its marks live under a source
of their own (`export_source`): they never move the server's marks, which would otherwise let the
next system-level sync skip what the partial export did not cover.
Searches look back a few minutes before the mark, because a server may stamp `lastUpdated` when a
transaction starts and make it visible only when it commits.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import or_, select, update

from clinicflow.clock import Clock
from clinicflow.ehr.bulk_export import (
    EXPORT_OPERATION,
    Downloader,
    ExportLevel,
    delete_job,
    kick_off,
    wait_for_manifest,
)
from clinicflow.ehr.fhir_client import FhirClient
from clinicflow.ehr.fhirtime import parse_instant
from clinicflow.ehr.folder import SourceItem
from clinicflow.ehr.ingest import DEFAULT_BATCH_SIZE, IngestReport
from clinicflow.ehr.sync import Progress, ingest_stream
from clinicflow.engine.upsert import insert_if_absent
from clinicflow.errors import EhrError, InputError
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database
from clinicflow.store.replica import WHOLE_SYNC_TYPE, SyncCheckpoint

# What automations read: scheduling, the people in it, how to reach them, what covers them.
SYNC_TYPES: tuple[str, ...] = (
    "Organization",
    "Location",
    "Practitioner",
    "PractitionerRole",
    "Schedule",
    "Slot",
    "Patient",
    "Coverage",
    "Appointment",
    "Communication",
    "Encounter",
)
# The SYNC_TYPES in the FHIR R4 Patient compartment (CompartmentDefinition/patient): all a Patient-
# or Group-level export returns. R4 lists Schedule too (by `actor`), but a practice's schedules
# belong to practitioners and rooms, so it stays with the practice-wide types a system export reads.
PATIENT_COMPARTMENT_TYPES = frozenset(
    {"Patient", "Appointment", "Communication", "Coverage", "Encounter"}
)
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR R4 `id` datatype
SEARCH_PAGE_SIZE = 500
LOOKBACK = timedelta(minutes=5)
WHOLE_SYNC = WHOLE_SYNC_TYPE


class SyncMode(StrEnum):
    """How to read from the EHR."""

    AUTO = "auto"  # bulk if the server offers a system-level $export, else search
    BULK = "bulk"
    SEARCH = "search"


@dataclass
class FhirSyncReport:
    """What a FHIR sync did."""

    mode: SyncMode
    ingest: IngestReport
    since: datetime | None
    high_water: datetime | None
    export_errors: list[str] = field(default_factory=list)
    level: ExportLevel = ExportLevel.SYSTEM
    group_id: str | None = None


def source_key(base_url: str) -> str:
    """How checkpoints name a server (one practice may change EHR; marks must not mix)."""
    return f"fhir {base_url.rstrip('/')}"[:200]


def export_source(
    base_url: str, level: ExportLevel = ExportLevel.SYSTEM, group_id: str | None = None
) -> str:
    """How checkpoints name what a sync covers: the whole server, every patient, or one Group."""
    if level is ExportLevel.SYSTEM:
        return source_key(base_url)
    suffix = " patient" if level is ExportLevel.PATIENT else f" group/{group_id}"
    # The suffix is kept whole so that two groups never share marks, however long the URL.
    return source_key(base_url)[: 200 - len(suffix)] + suffix


def check_level(mode: SyncMode, level: ExportLevel, group_id: str | None) -> None:
    """InputError, saying which option to change, if mode, level and group do not go together."""
    if level is ExportLevel.GROUP:
        if not group_id:
            raise InputError(
                "A group sync needs the id of the Group in the EHR that lists its patients: "
                "add --group ID."
            )
        if not _FHIR_ID.fullmatch(group_id):
            raise InputError(
                f"{group_id!r} is not a FHIR id: a Group id is 1 to 64 letters, digits, '-' or '.'."
            )
    elif group_id:
        raise InputError("--group only applies to a group sync: add --level group.")
    if mode is SyncMode.SEARCH and level is not ExportLevel.SYSTEM:
        raise InputError(
            f"A {level} sync reads the EHR's bulk export, not searches: "
            "leave out --mode search (or use --mode bulk)."
        )


def export_types(level: ExportLevel, types: Sequence[str]) -> list[str]:
    """The `_type` list for an export at `level`: only Patient compartment types below system."""
    if level is ExportLevel.SYSTEM:
        return list(types)
    chosen = [t for t in types if t in PATIENT_COMPARTMENT_TYPES]
    if not chosen:
        raise InputError(
            f"A {level} export only holds patients' records, and none of "
            f"{', '.join(types)} are: choose from {', '.join(sorted(PATIENT_COMPARTMENT_TYPES))}."
        )
    return chosen


def supports_system_export(capability: dict[str, Any]) -> bool:
    """Whether the CapabilityStatement offers `$export` at system level."""
    for rest in capability.get("rest") or ():
        for operation in rest.get("operation") or ():
            if not isinstance(operation, dict):
                continue
            definition = str(operation.get("definition") or "")
            if operation.get("name") == "export" or definition.startswith(EXPORT_OPERATION):
                return True
    return False


def read_checkpoints(db: Database, source: str) -> dict[str, datetime | None]:
    """Each type's high-water mark for `source`."""
    with db.sessions() as session:
        rows = session.execute(
            select(SyncCheckpoint.resource_type, SyncCheckpoint.high_water_at).where(
                SyncCheckpoint.source == source
            )
        )
        return {str(rtype): mark for rtype, mark in rows}


def save_checkpoint(
    db: Database, source: str, resource_types: Iterable[str], mark: datetime, now: datetime
) -> None:
    """Move the marks of `resource_types` forward to `mark` (never back, even when racing)."""
    with db.transaction() as session:
        for rtype in resource_types:
            key = {"source": source, "resource_type": rtype}
            insert_if_absent(
                session,
                SyncCheckpoint,
                {**key, "high_water_at": None, "updated_at": now},
                ["source", "resource_type"],
            )
            session.execute(
                update(SyncCheckpoint)
                .where(
                    SyncCheckpoint.source == source,
                    SyncCheckpoint.resource_type == rtype,
                    or_(
                        SyncCheckpoint.high_water_at.is_(None), SyncCheckpoint.high_water_at < mark
                    ),
                )
                .values(high_water_at=mark, updated_at=now)
            )


def sync_fhir(
    db: Database,
    cipher: PhiCipher,
    clock: Clock,
    client: FhirClient,
    *,
    mode: SyncMode = SyncMode.AUTO,
    since: datetime | None = None,
    types: Sequence[str] = SYNC_TYPES,
    on_progress: Progress | None = None,
    on_status: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    batch_size: int = DEFAULT_BATCH_SIZE,
    level: ExportLevel = ExportLevel.SYSTEM,
    group_id: str | None = None,
) -> FhirSyncReport:
    """Bring the replica (or the part `level` covers) up to date; `since` overrides the marks."""
    check_level(mode, level, group_id)
    source = export_source(client.base_url, level, group_id)
    started = clock.now()
    marks = read_checkpoints(db, source)
    if mode is SyncMode.AUTO and level is ExportLevel.SYSTEM:
        mode = SyncMode.BULK if supports_system_export(client.capability()) else SyncMode.SEARCH
    if mode is SyncMode.SEARCH:
        report = _search(
            db, cipher, clock, client, source, types, marks, since, on_progress, batch_size
        )
    else:
        types = export_types(level, types)
        start_from = since if since is not None else _oldest_mark(marks, types)
        report = _bulk(
            db,
            cipher,
            clock,
            client,
            source,
            level,
            group_id,
            types,
            start_from,
            on_progress,
            on_status,
            sleep,
            batch_size,
        )
    # Only a system-level sync says what the whole replica is current as of. A Group export
    # covers its members alone; a Patient-level one leaves out Practitioner, PractitionerRole,
    # Location, Organization, Schedule and Slot, and any Appointment or Encounter that names no
    # patient (a room blocked for cleaning). `status` and /readyz would call a stale replica fresh.
    if level is ExportLevel.SYSTEM:
        # Current as of the export's transactionTime, or the start of the searches.
        current_as_of = report.high_water if mode is SyncMode.BULK else started
        save_checkpoint(db, source, [WHOLE_SYNC], current_as_of or started, clock.now())
    return report


def _oldest_mark(marks: dict[str, datetime | None], types: Sequence[str]) -> datetime | None:
    """The `_since` that covers every type: the oldest mark, or None if a type has none yet."""
    found = [marks.get(t) for t in types]
    return None if any(m is None for m in found) else min(m for m in found if m is not None)


def _bulk(
    db: Database,
    cipher: PhiCipher,
    clock: Clock,
    client: FhirClient,
    source: str,
    level: ExportLevel,
    group_id: str | None,
    types: Sequence[str],
    since: datetime | None,
    on_progress: Progress | None,
    on_status: Callable[[str], None] | None,
    sleep: Callable[[float], None],
    batch_size: int,
) -> FhirSyncReport:
    # A Group's marks are its own, so a patient who joined the Group after its last export brings
    # only records changed since then, unless the server adds their older ones (Bulk Data v2
    # allows it and says the server should document whether it does). An earlier `since` reads
    # further back.
    status_url = kick_off(client.http, level, group_id=group_id, types=types, since=since)
    try:
        manifest = wait_for_manifest(
            client.http, status_url, clock=clock, sleep=sleep, on_progress=on_status
        )
        downloader = Downloader(client.http, manifest)
        ingest = ingest_stream(
            db,
            cipher,
            clock,
            downloader.items(),
            source="bulk",
            on_progress=on_progress,
            batch_size=batch_size,
        )
        errors = list(downloader.error_messages())
    finally:
        delete_job(client.http, status_url)
    # Everything up to transactionTime is now stored: the next export starts from there.
    save_checkpoint(db, source, types, manifest.transaction_time, clock.now())
    return FhirSyncReport(
        SyncMode.BULK, ingest, since, manifest.transaction_time, errors, level, group_id
    )


class _MarkTracker:
    """The newest `meta.lastUpdated` a type's search has handed out, and whether it was sorted."""

    def __init__(self) -> None:
        self.newest: datetime | None = None
        self.in_order = True

    def watch(self, pages: Iterable[list[SourceItem]]) -> Iterator[SourceItem]:
        for items in pages:
            for item in items:
                self._see(item)
                yield item

    def _see(self, item: SourceItem) -> None:
        meta = item.resource.get("meta") if item.resource is not None else None
        stamp = meta.get("lastUpdated") if isinstance(meta, dict) else None
        try:
            when = parse_instant(stamp, "meta.lastUpdated") if stamp else None
        except InputError:
            when = None  # the resource itself will be rejected with the reason
        if when is None:
            return
        if self.newest is not None and when < self.newest:
            self.in_order = False
        if self.newest is None or when > self.newest:
            self.newest = when


def _search(
    db: Database,
    cipher: PhiCipher,
    clock: Clock,
    client: FhirClient,
    source: str,
    types: Sequence[str],
    marks: dict[str, datetime | None],
    since: datetime | None,
    on_progress: Progress | None,
    batch_size: int,
) -> FhirSyncReport:
    total = IngestReport()
    oldest: datetime | None = None
    newest: datetime | None = None
    for rtype in types:
        start = since if since is not None else marks.get(rtype)
        params: dict[str, str | list[str]] = {
            "_count": str(SEARCH_PAGE_SIZE),
            "_sort": "_lastUpdated",
        }
        if start is not None:
            lookback = (start - LOOKBACK).astimezone(UTC)
            params["_lastUpdated"] = f"ge{lookback.isoformat(timespec='milliseconds')}"
            oldest = start if oldest is None else min(oldest, start)
        tracker = _MarkTracker()
        pages = (page.items for page in client.search(rtype, params))

        def advance(rtype: str = rtype, tracker: _MarkTracker = tracker) -> None:
            # Mid-search only if pages came oldest first: else an unseen older one could be
            # skipped by a mark past it. The end of the search moves it in any case (below).
            if tracker.in_order and tracker.newest is not None:
                save_checkpoint(db, source, [rtype], tracker.newest, clock.now())

        try:
            report = ingest_stream(
                db,
                cipher,
                clock,
                tracker.watch(pages),
                source="fhir",
                on_progress=on_progress,
                after_write=advance,
                batch_size=batch_size,
            )
        except EhrError as exc:
            raise EhrError(
                f"Sync of {rtype} stopped: {exc.message}",
                status=exc.status,
                retryable=exc.retryable,
            ) from exc
        if tracker.newest is not None:
            save_checkpoint(db, source, [rtype], tracker.newest, clock.now())
            newest = tracker.newest if newest is None else max(newest, tracker.newest)
        total.merge(report)
    return FhirSyncReport(SyncMode.SEARCH, total, oldest, newest)
