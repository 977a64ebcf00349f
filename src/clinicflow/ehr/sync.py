"""`sync folder`: stream a folder of FHIR data into the replica.

On a machine with more than one core the CPU work (parse, check, extract, hash, encrypt) runs in
a forked producer process while this process writes batches to the database, so the two overlap.
Batches cross a bounded queue (memory stays flat however large the folder). The producer never
touches the database.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from clinicflow.clock import Clock
from clinicflow.ehr.folder import data_files, read_folder
from clinicflow.ehr.ingest import BatchBuilder, Ingestor, IngestReport, Rejection
from clinicflow.errors import ClinicflowError
from clinicflow.security.audit import Actor
from clinicflow.security.phi import PhiCipher
from clinicflow.store import Database

SYNC_ACTOR = Actor.system("sync")
_QUEUE_BATCHES = 4  # batches in flight between the producer and the writer
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
    batch_size: int = 2000,
    on_progress: Progress | None = None,
    parallel: bool | None = None,
) -> IngestReport:
    """Ingest every resource under `root`; bad ones are reported, the rest are stored."""
    data_files(root)  # a missing folder is an error before any work starts
    ingestor = Ingestor(db, cipher, clock, source="folder", actor=SYNC_ACTOR, batch_size=batch_size)
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1 and "fork" in multiprocessing.get_all_start_methods()
    if parallel:
        _write_from_producer(ingestor, root, batch_size, on_progress)
    else:
        for batch, seen in _prepare(root, ingestor.builder):
            if batch:
                ingestor.write(batch)
            if on_progress is not None:
                on_progress(seen)
    return ingestor.finish()


def _prepare(root: Path, builder: BatchBuilder) -> Iterator[tuple[list[Any], int]]:
    """Full batches as they are built, and how many items were read for each (for progress)."""
    seen = 0
    for _path, items in read_folder(root):
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


def _produce(root: Path, cipher: PhiCipher, batch_size: int, out: Any) -> None:
    """The producer process: prepare batches and hand them over; never touch the database."""
    builder = BatchBuilder(cipher, batch_size)
    try:
        for batch, seen in _prepare(root, builder):
            out.put(("batch", batch, seen))
        out.put(("done", builder.rejected, 0))
    except Exception as exc:  # noqa: BLE001  (process boundary: report to the writer, which raises)
        out.put(("error", f"{type(exc).__name__}: {exc}", 0))


def _write_from_producer(
    ingestor: Ingestor, root: Path, batch_size: int, on_progress: Progress | None
) -> None:
    context = multiprocessing.get_context("fork")
    channel = context.Queue(maxsize=_QUEUE_BATCHES)
    producer = context.Process(
        target=_produce, args=(root, ingestor.cipher, batch_size, channel), daemon=True
    )
    producer.start()
    try:
        while True:
            try:
                kind, payload, seen = channel.get(timeout=1.0)
            except queue.Empty:
                if not producer.is_alive():
                    raise ClinicflowError(
                        "The sync's reader process stopped unexpectedly; nothing after the last "
                        "stored batch was written. Run the sync again (it resumes safely).",
                        code="sync.reader_died",
                    ) from None
                continue
            if kind == "batch":
                if payload:
                    ingestor.write(payload)
                if on_progress is not None:
                    on_progress(seen)
            elif kind == "done":
                ingestor.builder.rejected.extend(Rejection(r.where, r.reason) for r in payload)
                return
            else:
                raise ClinicflowError(f"The sync's reader failed: {payload}", code="sync.reader")
    finally:
        producer.join(timeout=10)
        if producer.is_alive():
            producer.terminate()
