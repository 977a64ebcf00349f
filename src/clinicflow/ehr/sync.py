"""Stream FHIR data (a folder, search pages, export files) into the replica, a batch at a time.

Preparing batches in a second process was tried (docs/benchmarks.md): pickling prepared resources
across processes cost about as much as the preparation it moved, so the sync stays one process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import select

from clinicflow.clock import Clock
from clinicflow.ehr.folder import SourceItem, data_files, read_folder
from clinicflow.ehr.ingest import DEFAULT_BATCH_SIZE, Ingestor, IngestReport
from clinicflow.ehr.prepare import BatchBuilder
from clinicflow.security.audit import Actor
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database
from clinicflow.store.bulk import ensure_indexes, indexes_built_after
from clinicflow.store.replica import FhirResource, replica_tables

SYNC_ACTOR = Actor.system("sync")
_PROGRESS_EVERY = 500

Progress = Callable[[int], None]


def count_items(root: Path) -> int:
    """Roughly how many resources a folder holds (NDJSON lines; one per JSON file), for progress."""
    total = 0
    for path in data_files(root):
        if path.name.endswith(".ndjson"):
            with path.open("rb") as fh:
                total += sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))
        else:
            total += 1
    return total


def sync_folder(
    db: Database,
    cipher: PhiCipher,
    clock: Clock,
    root: Path,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Progress | None = None,
) -> IngestReport:
    """Ingest every resource under `root`; bad ones are reported, the rest are stored."""
    data_files(root)  # a missing folder is an error before any work starts
    items = (item for _path, file_items in read_folder(root) for item in file_items)
    return ingest_stream(
        db, cipher, clock, items, source="folder", batch_size=batch_size, on_progress=on_progress
    )


def ingest_stream(
    db: Database,
    cipher: PhiCipher,
    clock: Clock,
    items: Iterable[SourceItem],
    *,
    source: str,
    batch_size: int = DEFAULT_BATCH_SIZE,
    on_progress: Progress | None = None,
    after_write: Callable[[], None] | None = None,
) -> IngestReport:
    """Check, prepare and write a stream of items in batches; the one path every sync takes.

    `after_write` runs after each committed batch: everything taken from `items` so far is then
    stored (or rejected), so a caller may move its high-water mark.
    """
    ingestor = Ingestor(db, cipher, clock, source=source, actor=SYNC_ACTOR, batch_size=batch_size)
    tables = replica_tables()
    ensure_indexes(db.engine, tables)
    load = indexes_built_after(db.engine, tables) if is_replica_empty(db) else nullcontext()
    with load:
        for batch, seen in _prepare(items, ingestor.builder):
            if batch:
                ingestor.write(batch)
                if after_write is not None:
                    after_write()
            if on_progress is not None:
                on_progress(seen)
    report = ingestor.finish()  # after the indexes are back: it resolves references by them
    if after_write is not None:
        after_write()
    return report


def is_replica_empty(db: Database) -> bool:
    """True before the first resource is stored: a first load may build indexes at the end."""
    with db.engine.connect() as conn:
        return conn.execute(select(FhirResource.id).limit(1)).first() is None


def _prepare(items: Iterable[SourceItem], builder: BatchBuilder) -> Iterator[tuple[list[Any], int]]:
    """Full batches as they are built, and how many items were read for each (for progress)."""
    seen = 0
    for item in items:
        seen += 1
        if item.error is not None:
            builder.reject(item.where, item.error)
            batch = None
        else:
            batch = builder.add(item.resource, item.where)
        if batch or seen >= _PROGRESS_EVERY:
            yield batch or [], seen
            seen = 0
    yield builder.take(), seen
