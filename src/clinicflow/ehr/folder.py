"""Read a folder of FHIR data as Synthea and Bulk Data exports write it, streaming.

NDJSON files (one resource per line, optionally gzipped), Bundles and bare resources (`*.json`).
A Bulk Data `log.ndjson` is the export's log, not resources, and is skipped.
Each item carries where it came from (`FILE:LINE`, `FILE entry N`) for error messages.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path
from typing import Any

import orjson

from clinicflow.ehr.references import bundle_urn_map, rewrite_references
from clinicflow.errors import InputError

SKIPPED_NAMES = frozenset({"log.ndjson"})
_SUFFIXES = (".ndjson", ".ndjson.gz", ".json", ".json.gz")


@dataclass(frozen=True, slots=True)
class SourceItem:
    """A resource read from a folder, a search page or an export file, or why it could not be."""

    where: str
    resource: Mapping[str, Any] | None
    error: str | None = None


def data_files(root: Path) -> list[Path]:
    """The files a folder sync reads, in a stable order."""
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise InputError(f"{root} is not a folder", code="sync.no_folder")
    return sorted(
        p
        for p in root.rglob("*")
        if p.is_file() and p.name.endswith(_SUFFIXES) and p.name not in SKIPPED_NAMES
    )


def _open(path: Path) -> BufferedIOBase:
    return gzip.open(path, "rb") if path.name.endswith(".gz") else path.open("rb")


def read_ndjson(path: Path, label: str) -> Iterator[SourceItem]:
    """One item per non-blank line, without holding the file in memory."""
    with _open(path) as fh:
        yield from ndjson_items(fh, label)


def ndjson_items(lines: Iterable[bytes], label: str) -> Iterator[SourceItem]:
    """One item per non-blank NDJSON line (a file or a download), labelled `label:LINE`."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{label}:{number}"
        try:
            yield SourceItem(where, orjson.loads(line))
        except orjson.JSONDecodeError as exc:
            yield SourceItem(where, None, f"not valid JSON ({exc})")


def read_json(path: Path, label: str) -> Iterator[SourceItem]:
    """A bare resource, or each entry of a Bundle with its `urn:uuid:` references resolved."""
    with _open(path) as fh:
        try:
            document = orjson.loads(fh.read())
        except orjson.JSONDecodeError as exc:
            yield SourceItem(label, None, f"not valid JSON ({exc})")
            return
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        yield from bundle_items(document, label)
    else:
        yield SourceItem(label, document)


def bundle_items(bundle: Mapping[str, Any], label: str) -> Iterator[SourceItem]:
    """Each resource in a Bundle; `urn:uuid:` references are rewritten to `Type/id`."""
    entries = [e for e in bundle.get("entry") or () if isinstance(e, dict)]
    mapping = bundle_urn_map(entries)
    for number, entry in enumerate(bundle.get("entry") or (), start=1):
        where = f"{label} entry {number}"
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            yield SourceItem(where, None, "entry has no resource")
            continue
        method = (entry.get("request") or {}).get("method")
        if method == "DELETE":
            yield SourceItem(where, None, "DELETE entries are not applied from a folder")
            continue
        if "id" not in resource and entry.get("fullUrl", "").startswith("urn:uuid:"):
            resource = {**resource, "id": entry["fullUrl"].removeprefix("urn:uuid:")}
        yield SourceItem(where, rewrite_references(resource, mapping) if mapping else resource)


def read_folder(root: Path) -> Iterator[tuple[Path, Iterator[SourceItem]]]:
    """Each data file under `root` with a lazy iterator over its items."""
    base = root if root.is_dir() else root.parent
    for path in data_files(root):
        label = str(path.relative_to(base)) if path.is_relative_to(base) else str(path)
        is_ndjson = path.name.endswith((".ndjson", ".ndjson.gz"))
        yield path, (read_ndjson(path, label) if is_ndjson else read_json(path, label))
