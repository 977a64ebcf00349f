"""Write a synthetic practice as FHIR R4 NDJSON, one file per resource type."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import orjson

from clinicflow.synth.catalog import ResourceFile, resource_files
from clinicflow.synth.plan import plan_practice

# (what is happening, resources written so far, resources in all) for a progress bar.
ProgressHook = Callable[[str, int, int], None]
PROGRESS_EVERY = 5_000


def _ignore_progress(_stage: str, _done: int, _total: int) -> None:
    return None


def _write_file(
    directory: Path, item: ResourceFile, done: int, total: int, on_progress: ProgressHook
) -> int:
    """Stream one file through a temporary name, so a crash never leaves half a file behind."""
    final = directory / f"{item.resource_type}.ndjson"
    partial = directory / f".{item.resource_type}.ndjson.partial"
    written = 0
    # orjson writes compact JSON in insertion order and UTF-8, byte for byte what
    # json.dumps(separators=(",", ":"), ensure_ascii=False) gives, several times faster.
    with partial.open("wb") as fh:
        for resource in item.resources:
            fh.write(orjson.dumps(resource, option=orjson.OPT_APPEND_NEWLINE))
            written += 1
            if written % PROGRESS_EVERY == 0:
                on_progress(item.resource_type, done + written, total)
    partial.replace(final)
    on_progress(item.resource_type, done + written, total)
    return written


def write_practice(
    out_dir: Path,
    *,
    seed: int,
    patients: int,
    anchor_on: date,
    timezone: str = "America/New_York",
    on_progress: ProgressHook | None = None,
) -> dict[str, int]:
    """Write the practice for `seed` into `out_dir`; the same arguments give the same bytes.

    Returns the number of resources written per resource type.
    """
    report = on_progress or _ignore_progress
    report("planning", 0, 0)
    plan = plan_practice(seed=seed, patients=patients, anchor_on=anchor_on, timezone=timezone)
    files = resource_files(plan)
    total = sum(item.count for item in files)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    done = 0
    for item in files:
        counts[item.resource_type] = _write_file(out_dir, item, done, total, report)
        done += counts[item.resource_type]
    return counts
