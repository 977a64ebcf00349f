"""The resource store: Records by type and id, each type also kept sorted by (lastUpdated, id).

The sorted key list lets a search or an incremental sync start at a `_lastUpdated` bound or a
page cursor with a binary search instead of scanning every resource of the type. The store is
shared by uvicorn's thread (requests) and the test thread (put, delete), so every access goes
through `lock`; it is re-entrant so a handler can check a precondition and write atomically.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
from tests.fhir_peer.fhirtime import format_instant, point_micros
from tests.fhir_peer.records import Record, make_record, version_of

SKIPPED_FILES = frozenset({"log.ndjson"})  # a Bulk export's own log, not resources


class TypeIndex:
    """The live resources of one type: by id, and their keys in (lastUpdated, id) order."""

    __slots__ = ("by_id", "keys")

    def __init__(self) -> None:
        self.by_id: dict[str, Record] = {}
        self.keys: list[tuple[int, str]] = []

    def insert(self, record: Record) -> None:
        """Add or replace a record, keeping `keys` sorted."""
        old = self.by_id.get(record.id)
        if old is not None:
            self._drop_key(old)
        self.by_id[record.id] = record
        bisect.insort(self.keys, record.key)

    def remove(self, fhir_id: str) -> Record | None:
        """Take a record out; returns it, or None if it was not there."""
        old = self.by_id.pop(fhir_id, None)
        if old is not None:
            self._drop_key(old)
        return old

    def rebuild_keys(self) -> None:
        """Re-sort all keys at once (after a bulk load: one sort beats N sorted inserts)."""
        self.keys = sorted(record.key for record in self.by_id.values())

    def _drop_key(self, record: Record) -> None:
        at = bisect.bisect_left(self.keys, record.key)
        if at < len(self.keys) and self.keys[at] == record.key:
            del self.keys[at]

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        """Records in key order from position `start` to `stop` (positions in `keys`)."""
        by_id = self.by_id
        for _, fhir_id in self.keys[start:stop]:
            yield by_id[fhir_id]


def stamped(resource: dict[str, Any], version: int, last_updated: str) -> dict[str, Any]:
    """A copy of `resource` with meta.versionId and meta.lastUpdated set, other meta kept.

    `meta` goes right after `id`, where servers conventionally put it.
    """
    meta = resource.get("meta")
    new_meta = dict(meta) if isinstance(meta, dict) else {}
    new_meta["versionId"] = str(version)
    new_meta["lastUpdated"] = last_updated
    out: dict[str, Any] = {
        "resourceType": resource["resourceType"],
        "id": resource["id"],
        "meta": new_meta,
    }
    for name, value in resource.items():
        if name not in out:
            out[name] = value
    return out


class Store:
    """All resources; every method takes `lock`, and callers may hold it across several."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._types: dict[str, TypeIndex] = {}
        # (type, id) -> the version that was deleted: reads answer 410, a re-create goes on
        # numbering from there (FHIR keeps version ids increasing across a delete).
        self._deleted: dict[tuple[str, str], int] = {}

    def index(self, resource_type: str) -> TypeIndex | None:
        """The live index of one type (hold `lock` while using it)."""
        return self._types.get(resource_type)

    def types(self) -> list[str]:
        """Types that have at least one live resource, sorted."""
        with self.lock:
            return sorted(name for name, index in self._types.items() if index.by_id)

    def count(self) -> int:
        """How many live resources there are in all."""
        with self.lock:
            return sum(len(index.by_id) for index in self._types.values())

    def get(self, resource_type: str, fhir_id: str) -> Record | None:
        """The live record, or None if unknown or deleted."""
        with self.lock:
            index = self._types.get(resource_type)
            return None if index is None else index.by_id.get(fhir_id)

    def deleted_version(self, resource_type: str, fhir_id: str) -> int | None:
        """The version a deleted resource had, or None if it was never deleted."""
        with self.lock:
            return self._deleted.get((resource_type, fhir_id))

    def _next_version(self, resource_type: str, fhir_id: str) -> int:
        current = self.get(resource_type, fhir_id)
        if current is not None:
            return current.version + 1
        return self._deleted.get((resource_type, fhir_id), 0) + 1

    def _insert(self, record: Record) -> None:
        index = self._types.setdefault(record.resource_type, TypeIndex())
        index.insert(record)
        self._deleted.pop((record.resource_type, record.id), None)

    def write(self, resource: dict[str, Any], now_us: int) -> tuple[Record, bool]:
        """Create or replace: next versionId, lastUpdated = now. Returns (record, created)."""
        resource_type = str(resource["resourceType"])
        fhir_id = str(resource["id"])
        with self.lock:
            created = self.get(resource_type, fhir_id) is None
            version = self._next_version(resource_type, fhir_id)
            body = stamped(resource, version, format_instant(now_us))
            raw = orjson.dumps(body)
            record = make_record(resource_type, fhir_id, version, now_us, raw, body)
            self._insert(record)
            return record, created

    def write_raw(self, resource_type: str, fhir_id: str, raw: bytes, now_us: int) -> Record:
        """Store bytes as they are (maybe not FHIR, maybe not JSON), indexed as far as possible."""
        try:
            parsed: object = orjson.loads(raw)
            is_json = True
        except orjson.JSONDecodeError:
            parsed, is_json = None, False
        with self.lock:
            version = self._next_version(resource_type, fhir_id)
            record = make_record(resource_type, fhir_id, version, now_us, raw, parsed, is_json)
            self._insert(record)
            return record

    def delete(self, resource_type: str, fhir_id: str) -> bool:
        """Delete; True if a live resource was deleted (later reads answer 410)."""
        with self.lock:
            index = self._types.get(resource_type)
            old = None if index is None else index.remove(fhir_id)
            if old is None:
                return False
            self._deleted[(resource_type, fhir_id)] = old.version
            return True

    def find_by_identifier(self, resource_type: str, token: str) -> list[Record]:
        """Resources of a type whose identifier matches a token search value.

        `system|value` matches exactly, `|value` an identifier without a system, `value` any
        system, `system|` any value in that system (FHIR R4 search, token parameters).
        """
        with self.lock:
            index = self._types.get(resource_type)
            if index is None:
                return []
            if "|" not in token:
                return [r for r in index.by_id.values() if _has_value(r.identifiers, token)]
            if token.endswith("|"):
                return [
                    r
                    for r in index.by_id.values()
                    if any(t.startswith(token) for t in r.identifiers)
                ]
            return [r for r in index.by_id.values() if token in r.identifiers]

    def load_ndjson(self, files: Iterable[Path], now_us: int) -> int:
        """Load NDJSON files (one resource per line); returns how many resources were loaded.

        A line that already has meta.lastUpdated is kept byte for byte (versionId from meta,
        else 1); one without gets meta.versionId/lastUpdated = now added, because searches
        by `_lastUpdated` and incremental syncs need every resource to have one.
        """
        loaded = 0
        touched: set[str] = set()
        for path in files:
            records = list(_read_file(path, now_us))
            with self.lock:
                for record in records:
                    index = self._types.setdefault(record.resource_type, TypeIndex())
                    index.by_id[record.id] = record
                    self._deleted.pop((record.resource_type, record.id), None)
                    touched.add(record.resource_type)
            loaded += len(records)
        with self.lock:
            for resource_type in touched:
                self._types[resource_type].rebuild_keys()
        return loaded


def _has_value(tokens: tuple[str, ...], value: str) -> bool:
    return any(token.partition("|")[2] == value for token in tokens)


def _read_file(path: Path, now_us: int) -> Iterator[Record]:
    with path.open("rb") as fh:
        for number, line in enumerate(fh, start=1):
            raw = line.strip()
            if not raw:
                continue
            try:
                resource = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise ValueError(f"{path}:{number}: not JSON ({exc})") from None
            if not (
                isinstance(resource, dict)
                and isinstance(resource.get("resourceType"), str)
                and isinstance(resource.get("id"), str)
            ):
                raise ValueError(f"{path}:{number}: not a FHIR resource with resourceType and id")
            meta = resource.get("meta")
            last_updated = point_micros(meta.get("lastUpdated")) if isinstance(meta, dict) else None
            version = version_of(meta)
            if last_updated is None:
                last_updated = now_us
                resource = stamped(resource, version, format_instant(now_us))
                raw = orjson.dumps(resource)
            yield make_record(
                resource["resourceType"], resource["id"], version, last_updated, raw, resource
            )


def ndjson_files(folder: Path) -> list[Path]:
    """The resource files of a folder: every *.ndjson except a Bulk export log."""
    return sorted(p for p in folder.glob("*.ndjson") if p.name not in SKIPPED_FILES)
