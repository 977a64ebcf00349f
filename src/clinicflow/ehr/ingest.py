"""Upsert FHIR resources into the replica in batches, collecting rejections as it goes.

`BatchBuilder` does the CPU work without touching the database (check, extract, hash, encrypt,
newest-wins within a batch); `Ingestor` writes each batch in one transaction through
`replica_writer.write_resources`. Idempotent: a second ingest of the same
data changes nothing and raises no events.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from clinicflow.clock import Clock
from clinicflow.ehr.late_references import count_pending_references, resolve_pending_references
from clinicflow.ehr.prepare import BatchBuilder, PreparedResource, Rejection
from clinicflow.ehr.replica_writer import BatchResult, write_resources
from clinicflow.security.audit import Actor
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database


@dataclass
class IngestReport:
    """What an ingest did, for the CLI, the run ledger and tests."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    events: int = 0
    unresolved_references: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    by_type: Counter[str] = field(default_factory=Counter)

    @property
    def stored(self) -> int:
        """Resources the replica now holds from this ingest (new, changed or already current)."""
        return self.created + self.updated + self.unchanged

    def counts(self) -> dict[str, int]:
        """How many of each outcome, with no PHI (a rejection's reason may quote a value)."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": len(self.rejected),
            "events": self.events,
        }

    def add(self, result: BatchResult | IngestReport) -> None:
        """Count one written batch."""
        self.created += result.created
        self.updated += result.updated
        self.unchanged += result.unchanged
        self.events += result.events
        self.by_type.update(result.by_type)

    def merge(self, part: IngestReport) -> None:
        """Add a later ingest's report (one resource type of a search sync) to this one."""
        self.add(part)  # the counts, as for a batch
        self.rejected.extend(part.rejected)
        self.unresolved_references = part.unresolved_references  # the replica's count after it


# Resources per transaction. Each commit rewrites the index pages its batch touched, so bigger
# batches write less (measured at 50,000 patients: 2,000 → ~52 s, 5,000 → ~45 s, 10,000 → ~45 s)
# while a batch of 5,000 prepared resources stays around 15 MB.
DEFAULT_BATCH_SIZE = 5000


class Ingestor:
    """Writes prepared batches, each in one transaction, and keeps the running report.

    Callers prepare through `self.builder` (which also collects rejections) and hand each full
    batch to `write`; `finish` writes what is left and resolves late references.
    """

    def __init__(
        self,
        db: Database,
        cipher: PhiCipher,
        clock: Clock,
        *,
        source: str,
        actor: Actor,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.clock = clock
        self.source = source
        self.actor = actor
        self.report = IngestReport()
        self.builder = BatchBuilder(cipher, batch_size)

    def write(self, batch: list[PreparedResource]) -> None:
        """Write one prepared batch in one transaction."""
        with self.db.transaction() as session:
            result = write_resources(
                session,
                batch,
                now=self.clock.now(),
                source=self.source,
                actor=self.actor,
            )
        self.report.add(result)

    def finish(self) -> IngestReport:
        """Write what the builder still holds, resolve conditional references, and report."""
        rest = self.builder.take()
        if rest:
            self.write(rest)
        with self.db.transaction() as session:
            resolve_pending_references(session)
            self.report.unresolved_references = count_pending_references(session)
        self.report.rejected = list(self.builder.rejected)
        return self.report
