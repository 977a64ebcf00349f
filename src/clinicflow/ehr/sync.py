"""`sync folder`: stream a folder of FHIR data into the replica through the Ingestor."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from clinicflow.clock import Clock
from clinicflow.ehr.folder import data_files, read_folder
from clinicflow.ehr.ingest import Ingestor, IngestReport
from clinicflow.security.audit import Actor
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database

SYNC_ACTOR = Actor.system("sync")


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
    batch_size: int = 2000,
    on_progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest every resource under `root`; bad ones are reported, the rest are stored."""
    ingestor = Ingestor(
        db,
        cipher,
        clock,
        source="folder",
        actor=SYNC_ACTOR,
        batch_size=batch_size,
    )
    for _path, items in read_folder(root):
        seen = 0
        for item in items:
            seen += 1
            if item.error is not None:
                ingestor.reject(item.where, item.error)
            else:
                ingestor.add(item.resource, item.where)
            if on_progress is not None and seen % 500 == 0:
                on_progress(500)
        if on_progress is not None:
            on_progress(seen % 500)
    return ingestor.finish()
