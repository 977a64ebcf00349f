"""Upsert FHIR resources into the replica in batches, collecting rejections as it goes.

Each batch is one transaction written by `replica_writer.write_resources`: encrypted bodies, typed
rows, blind index, events (outbox) and one audit row. Idempotent: a second ingest of the same data
changes nothing and raises no events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clinicflow.clock import Clock
from clinicflow.ehr.replica_writer import (
    PreparedResource,
    count_pending_references,
    is_newer,
    prepare_resource,
    resolve_pending_references,
    write_resources,
)
from clinicflow.ehr.validate import check_resource
from clinicflow.errors import InputError
from clinicflow.security.audit import Actor
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database


@dataclass(frozen=True, slots=True)
class Rejection:
    """A resource the replica did not take, and why."""

    where: str
    reason: str


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


class Ingestor:
    """Buffers resources and writes them in batches; collect rejections, never stop on one."""

    def __init__(
        self,
        db: Database,
        cipher: PhiCipher,
        clock: Clock,
        *,
        source: str,
        actor: Actor,
        batch_size: int = 2000,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.clock = clock
        self.source = source
        self.actor = actor
        self.batch_size = batch_size
        self.on_batch = on_batch
        self.report = IngestReport()
        self._batch: dict[tuple[str, str], PreparedResource] = {}

    def add(self, resource: Any, where: str) -> None:
        """Check and buffer one resource; a bad one is recorded as rejected with `where`."""
        try:
            item = prepare_resource(check_resource(resource), self.cipher)
        except InputError as exc:
            self.reject(where, str(exc) if not exc.where else exc.message)
            return
        key = (item.resource_type, item.fhir_id)
        held = self._batch.get(key)
        if held is None or is_newer(item, held.content_hash, held.last_updated):
            self._batch[key] = item
        if len(self._batch) >= self.batch_size:
            self.flush()

    def reject(self, where: str, reason: str) -> None:
        """Record a rejection found before `add` (bad JSON, an unreadable file)."""
        self.report.rejected.append(Rejection(where, reason))

    def flush(self) -> None:
        """Write the buffered batch in one transaction."""
        if not self._batch:
            return
        items = list(self._batch.values())
        self._batch = {}
        with self.db.transaction() as session:
            result = write_resources(
                session,
                self.cipher,
                items,
                now=self.clock.now(),
                source=self.source,
                actor=self.actor,
            )
        report = self.report
        report.created += result.created
        report.updated += result.updated
        report.unchanged += result.unchanged
        report.events += result.events
        report.by_type.update(result.by_type)
        if self.on_batch is not None:
            self.on_batch(len(items))

    def finish(self) -> IngestReport:
        """Flush, resolve conditional references that can now be resolved, and report."""
        self.flush()
        with self.db.transaction() as session:
            resolve_pending_references(session)
            self.report.unresolved_references = count_pending_references(session)
        return self.report
