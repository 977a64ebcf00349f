"""How a replica body is kept: canonical JSON, compressed with a shipped dictionary, encrypted.

`seal_body` turns a resource's canonical JSON into what `fhir_resources.body` holds and
`open_body` turns it back into the resource. The plaintext inside the AES-GCM ciphertext is either
the JSON itself (bodies written before compression, which start with `{`) or
`b"Z" | dictionary number (1 byte) | zstd frame`.

Why compress: a FHIR resource is mostly element names, code-system URLs and codes that every
resource of its type repeats. zstd with a dictionary trained on such resources keeps a body at
~15-20% of its JSON (50% for Synthea's free-text-heavy records), which shrinks the database
(and its backups) by ~40% for ~3 µs a resource; a sync's wall time did not measurably change
either way (docs/benchmarks.md).

The dictionary is a file in this package, trained by `tools/make_body_dictionary.py` on
fictional data only (clinicflow's synthetic practice and the public Synthea sample), so it holds
no PHI and can sit beside the code unencrypted. A body names the dictionary it was made with, and
a dictionary, once shipped, is never changed: its SHA-256 is pinned below, and a new one gets the
next number. Compression happens before encryption, so a body's length says a little about its
content; the replica never mixes attacker-chosen text with secrets inside one body the way a
web page does, which is what length attacks on compression need.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cache
from importlib import resources
from typing import Any

import orjson
import zstandard
from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.errors import SecurityError
from clinicflow.security.phi import PhiCipher
from clinicflow.store.replica import FhirResource

COMPRESSED = b"Z"
CURRENT_DICTIONARY = 1
# Dictionary number -> (file in this package, SHA-256 of its bytes).
DICTIONARIES = {
    1: (
        "fhir-r4-bodies-1.zdict",
        "b448e113bd427d4fa16ee2fae2c9f079e3ed2516ce7b2f19074963ccf0789f13",
    ),
}
LEVEL = 1  # level 3 saves another ~1% and costs ~15% more time on the sync's hot path


def body_aad(resource_type: str, fhir_id: str) -> bytes:
    """The associated data binding an encrypted body to its row."""
    return f"{resource_type}/{fhir_id}".encode()


@cache
def _dictionary(number: int) -> zstandard.ZstdCompressionDict:
    try:
        name, digest = DICTIONARIES[number]
    except KeyError:
        raise SecurityError(
            f"A stored body names compression dictionary {number}, which this version of "
            "clinicflow does not have; upgrade clinicflow to read it."
        ) from None
    data = resources.files("clinicflow.store").joinpath(name).read_bytes()
    if hashlib.sha256(data).hexdigest() != digest:
        raise SecurityError(f"The body dictionary {name} is not the one shipped; reinstall.")
    return zstandard.ZstdCompressionDict(data)


class _Codecs(threading.local):
    """zstd contexts are not safe to share between threads: one set per thread."""

    def __init__(self) -> None:
        self.compressor: zstandard.ZstdCompressor | None = None
        self.decompressors: dict[int, zstandard.ZstdDecompressor] = {}


_CODECS = _Codecs()


def _compressor() -> zstandard.ZstdCompressor:
    if _CODECS.compressor is None:
        _CODECS.compressor = zstandard.ZstdCompressor(
            level=LEVEL,
            dict_data=_dictionary(CURRENT_DICTIONARY),
            write_checksum=False,  # AES-GCM already authenticates every byte
            write_dict_id=False,  # our own header names the dictionary
        )
    return _CODECS.compressor


def _decompressor(number: int) -> zstandard.ZstdDecompressor:
    found = _CODECS.decompressors.get(number)
    if found is None:
        found = zstandard.ZstdDecompressor(dict_data=_dictionary(number))
        _CODECS.decompressors[number] = found
    return found


_HEADER = COMPRESSED + bytes([CURRENT_DICTIONARY])


def compress_json(canonical: bytes) -> bytes:
    """The plaintext a body keeps for `canonical` JSON."""
    return _HEADER + _compressor().compress(canonical)


def json_of(plaintext: bytes) -> bytes:
    """The JSON a body's plaintext holds (compressed or, for older bodies, as it is)."""
    if plaintext[:1] == COMPRESSED:
        return _decompressor(plaintext[1]).decompress(plaintext[2:])
    return plaintext


def seal_body(cipher: PhiCipher, canonical: bytes, resource_type: str, fhir_id: str) -> bytes:
    """What `fhir_resources.body` stores for `canonical` JSON of `resource_type/fhir_id`."""
    return cipher.encrypt(compress_json(canonical), body_aad(resource_type, fhir_id))


def open_body(cipher: PhiCipher, body: bytes, resource_type: str, fhir_id: str) -> Any:
    """The resource a stored body holds; SecurityError if it was altered or moved to another row."""
    return orjson.loads(json_of(cipher.decrypt(body, body_aad(resource_type, fhir_id))))


def read_body(session: Session, cipher: PhiCipher, resource_type: str, fhir_id: str) -> Any:
    """The stored resource `resource_type/fhir_id`, decrypted; None if the replica has none.
    The caller audits the read."""
    body = session.scalar(
        select(FhirResource.body).where(
            FhirResource.resource_type == resource_type, FhirResource.fhir_id == fhir_id
        )
    )
    return None if body is None else open_body(cipher, body, resource_type, fhir_id)
