"""Reconcile the scheduling window with the EHR: find the appointments that silently went away.

Incremental sync only sees what changed (`_lastUpdated`, `_since`): a deleted appointment never
shows up there, and many EHRs leave entered-in-error ones out of every search and export. So every
so often we list the appointments the EHR has in the window that matters (yesterday to a few weeks
ahead) and compare with the replica. Each one we hold that the list lacks is read by id, which
settles it: 404 or 410 means deleted and it is removed from the replica (see `removals`); a
resource that answers (entered-in-error, or moved out of the window) is ingested like any other
change. Reading each one also covers the race with a sync writing meanwhile: nothing is removed
on the word of a stale list.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from clinicflow.clock import Clock
from clinicflow.ehr.fhir_client import FhirClient, SearchPage
from clinicflow.ehr.folder import SourceItem
from clinicflow.ehr.ingest import IngestReport
from clinicflow.ehr.removals import remove_appointments
from clinicflow.ehr.sync import Progress, ingest_stream
from clinicflow.errors import EhrError
from clinicflow.security.audit import Actor
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database
from clinicflow.store.replica import Appointment, FhirResource

RECONCILE_ACTOR = Actor.system("ehr-reconcile")
FROM_EHR = ("fhir", "bulk")  # what came from the EHR; folder imports and local changes are ours
GONE = (404, 410)
DEFAULT_BACK = timedelta(days=1)
DEFAULT_AHEAD = timedelta(days=30)
PAGE_SIZE = 500


@dataclass(frozen=True, slots=True)
class Window:
    """The stretch of the calendar reconciled: [start, end)."""

    start: datetime
    end: datetime

    @classmethod
    def around(
        cls, now: datetime, back: timedelta = DEFAULT_BACK, ahead: timedelta = DEFAULT_AHEAD
    ) -> Window:
        """From `back` before `now` to `ahead` after it."""
        return cls(now - back, now + ahead)

    def search_params(self) -> dict[str, str | list[str]]:
        """Appointment search parameters that list the window.

        `_include` brings each visit's patient in the same page: one booked for a patient new
        since the last sync can then be reminded without another round trip.
        """
        return {
            "date": [f"ge{_instant(self.start)}", f"lt{_instant(self.end)}"],
            "_include": "Appointment:patient",
            "_count": str(PAGE_SIZE),
        }


@dataclass
class ReconcileReport:
    """What a reconciliation found."""

    window: Window
    listed: int = 0  # appointments the EHR listed in the window
    missing: int = 0  # held here, not listed there
    removed: list[str] = field(default_factory=list)  # read back 404/410: deleted
    refreshed: int = 0  # read back fine (entered-in-error, moved): ingested
    unsettled: list[str] = field(default_factory=list)  # the read failed: tried next time
    ingest: IngestReport = field(default_factory=IngestReport)

    def summary(self) -> dict[str, object]:
        """Counts only (no PHI), for the job's state and the CLI."""
        return {
            "window_start": self.window.start.isoformat(),
            "window_end": self.window.end.isoformat(),
            "listed": self.listed,
            "missing": self.missing,
            "removed": len(self.removed),
            "refreshed": self.refreshed,
            "unsettled": len(self.unsettled),
            "rejected": len(self.ingest.rejected),
            "events": self.ingest.events,
        }


def missing_from(held: Iterable[str], listed: Iterable[str]) -> list[str]:
    """What the replica holds that the EHR did not list, in a stable order."""
    return sorted(set(held) - set(listed))


def reconcile_window(
    db: Database,
    cipher: PhiCipher,
    clock: Clock,
    client: FhirClient,
    *,
    window: Window | None = None,
    on_progress: Progress | None = None,
) -> ReconcileReport:
    """List the window's appointments in the EHR, ingest them, and settle the ones gone missing."""
    window = window or Window.around(clock.now())
    report = ReconcileReport(window)
    listed: set[str] = set()
    pages = client.search("Appointment", window.search_params())
    report.ingest.merge(
        ingest_stream(
            db, cipher, clock, _noting_ids(pages, listed), source="fhir", on_progress=on_progress
        )
    )
    report.listed = len(listed)
    missing = missing_from(_held_in(db, window), listed)
    report.missing = len(missing)
    found: list[SourceItem] = []
    gone: list[str] = []
    for fhir_id in missing:
        try:
            resource = client.read("Appointment", fhir_id).resource
            found.append(SourceItem(f"Appointment/{fhir_id}", resource))
        except EhrError as exc:
            if exc.status in GONE:
                gone.append(fhir_id)
            else:
                report.unsettled.append(f"Appointment/{fhir_id}: {exc.message}")
    if found:
        report.ingest.merge(ingest_stream(db, cipher, clock, found, source="fhir"))
        report.refreshed = len(found)
    if gone:
        with db.transaction() as session:
            report.removed = remove_appointments(
                session, gone, reason="deleted", now=clock.now(), actor=RECONCILE_ACTOR
            )
    return report


def _noting_ids(pages: Iterable[SearchPage], listed: set[str]) -> Iterator[SourceItem]:
    for page in pages:
        for item in page.items:
            resource = item.resource
            if resource is not None and resource.get("resourceType") == "Appointment":
                listed.add(str(resource.get("id")))
            yield item


def _held_in(db: Database, window: Window) -> list[str]:
    """Appointments from the EHR the replica holds in the window.

    Entered-in-error ones are left out: the EHR may hide them from every list, and they have
    already been settled (one read would find them again, every time).
    """
    with db.sessions() as session:
        return list(
            session.scalars(
                select(Appointment.fhir_id)
                .join(
                    FhirResource,
                    (FhirResource.resource_type == "Appointment")
                    & (FhirResource.fhir_id == Appointment.fhir_id),
                )
                .where(
                    Appointment.start_at >= window.start,
                    Appointment.start_at < window.end,
                    FhirResource.source.in_(FROM_EHR),
                    FhirResource.local_change.is_(False),
                    Appointment.status != "entered-in-error",
                )
            )
        )


def _instant(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds")
