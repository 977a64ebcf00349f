"""Prepare FHIR resources for the replica without touching the database (pure CPU work).

Check, extract typed columns and references, serialise canonically, hash, compress and encrypt
the body, hash lookup values for the blind index; keep the newest copy of each resource within a
batch. The result is what `replica_writer.write_resources` stores; nothing here reads or writes
the database.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from clinicflow.ehr.extract import extract, last_updated_of, version_of
from clinicflow.ehr.validate import check_resource
from clinicflow.errors import InputError
from clinicflow.security.phi import PhiCipher
from clinicflow.store.bodies import seal_body


@dataclass(frozen=True, slots=True)
class Rejection:
    """A resource the replica did not take, and why."""

    where: str
    reason: str


@dataclass(slots=True)
class PreparedResource:
    """A checked resource with everything the replica stores about it, ready to write.

    Everything keyed is already hashed and encrypted: the writer only decides and inserts.
    """

    resource_type: str
    fhir_id: str
    body: bytes  # the canonical JSON as stored: compressed, encrypted and bound to Type/id
    content_hash: str
    last_updated: datetime | None
    version_id: str | None
    row: dict[str, Any] | None  # the typed row, if the type has a table
    patient_id: str | None  # the patient compartment the resource belongs to
    lookups: list[tuple[str, str]]  # blind-index rows: (kind, digest)
    pending: list[tuple[str, str, str]]  # unresolved conditional refs: (column, type, digest)


def prepare_resource(resource: Mapping[str, Any], cipher: PhiCipher) -> PreparedResource:
    """Extract, serialise canonically, hash and encrypt one resource (already checked)."""
    rtype, rid = resource["resourceType"], resource["id"]
    try:
        extracted = extract(resource)
        last_updated = last_updated_of(resource)
    except InputError as exc:
        raise InputError(f"{rtype}/{rid}: {exc.message}") from exc
    canonical = orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
    digest = hmac.new(cipher.ring.index_key, canonical, hashlib.sha256).hexdigest()[:32]
    body = seal_body(cipher, canonical, rtype, rid)
    lookups = [(kind, cipher.blind_index(kind, value)) for kind, value in extracted.lookups]
    pending = [
        (column, ref.resource_type, cipher.blind_index("identifier", ref.lookup_value))
        for column, ref in extracted.pending
    ]
    return PreparedResource(
        rtype,
        rid,
        body,
        digest,
        last_updated,
        version_of(resource),
        extracted.row,
        extracted.patient_id,
        lookups,
        pending,
    )


def is_newer(incoming: PreparedResource, stored_hash: str, stored_updated: datetime | None) -> bool:
    """Whether `incoming` should replace what is stored: the newer `meta.lastUpdated`, else a
    different content hash."""
    both = incoming.last_updated is not None and stored_updated is not None
    if both and incoming.last_updated != stored_updated:
        return incoming.last_updated > stored_updated  # type: ignore[operator]
    # No timestamps, or the same one (servers that stamp to the second): the content decides.
    return incoming.content_hash != stored_hash


class BatchBuilder:
    """Checks and prepares resources into batches, keeping the newest copy of each within one."""

    def __init__(self, cipher: PhiCipher, batch_size: int) -> None:
        self.cipher = cipher
        self.batch_size = batch_size
        self.rejected: list[Rejection] = []
        self._batch: dict[tuple[str, str], PreparedResource] = {}

    def add(self, resource: Any, where: str) -> list[PreparedResource] | None:
        """Prepare one resource; returns a full batch when one is ready, else None."""
        try:
            item = prepare_resource(check_resource(resource), self.cipher)
        except InputError as exc:
            self.reject(where, str(exc) if not exc.where else exc.message)
            return None
        key = (item.resource_type, item.fhir_id)
        held = self._batch.get(key)
        if held is None or is_newer(item, held.content_hash, held.last_updated):
            self._batch[key] = item
        return self.take() if len(self._batch) >= self.batch_size else None

    def reject(self, where: str, reason: str) -> None:
        """Record a resource that was not taken (bad JSON, a failed check, an unreadable file)."""
        self.rejected.append(Rejection(where, reason))

    def take(self) -> list[PreparedResource]:
        """The batch built so far (possibly empty); the builder starts a new one."""
        batch, self._batch = list(self._batch.values()), {}
        return batch
