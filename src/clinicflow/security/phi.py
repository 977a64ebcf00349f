"""PHI at rest: AES-256-GCM for bodies and identifying columns, keyed hashes for lookups.

A ciphertext is `0x01 | key id (4 bytes) | nonce (12) | ciphertext+tag`. The additional
authenticated data binds a ciphertext to its row (e.g. b"Patient/123"), so a body copied onto
another row fails to decrypt instead of silently showing the wrong patient.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from clinicflow.errors import SecurityError
from clinicflow.security.registry import register_encrypted_column

if TYPE_CHECKING:
    from pydantic import SecretStr

    from clinicflow.settings import Settings

__all__ = [
    "KEY_FILE_NAME",
    "Keyring",
    "PhiCipher",
    "key_file_path",
    "key_id_for",
    "keyring_from_settings",
    "load_keyring",
    "normalise_for_index",
    "register_encrypted_column",
    "write_key_file",
]

FORMAT_V1 = b"\x01"
KEY_FILE_NAME = "phi.json"


def key_id_for(key: bytes) -> bytes:
    """A 4-byte id naming a key, so a ciphertext says which key opens it."""
    return hashlib.sha256(b"clinicflow-key-id" + key).digest()[:4]


@dataclass
class Keyring:
    """The active data key, older keys still needed to decrypt, and the blind-index key."""

    active: bytes
    index_key: bytes
    previous: list[bytes] = field(default_factory=list)

    def by_id(self) -> dict[bytes, bytes]:
        """Every key this ring can decrypt with, by id."""
        keys = {key_id_for(k): k for k in self.previous}
        keys[key_id_for(self.active)] = self.active
        return keys

    @classmethod
    def generate(cls) -> Keyring:
        """A fresh ring with random 256-bit keys."""
        return cls(active=AESGCM.generate_key(bit_length=256), index_key=secrets.token_bytes(32))

    def to_json(self) -> str:
        """The ring as stored in the key file."""
        enc = base64.b64encode
        return json.dumps(
            {
                "active": enc(self.active).decode(),
                "previous": [enc(k).decode() for k in self.previous],
                "index_key": enc(self.index_key).decode(),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> Keyring:
        """Parse a key file's contents."""
        data = json.loads(text)
        dec = base64.b64decode
        return cls(
            active=dec(data["active"]),
            previous=[dec(k) for k in data.get("previous", [])],
            index_key=dec(data["index_key"]),
        )

    @classmethod
    def from_secret(
        cls,
        secret_b64: str,
        *,
        previous_b64: Sequence[str] = (),
        index_key_b64: str | None = None,
    ) -> Keyring:
        """A ring from keys given in settings; unless pinned, the index key is derived from the key.

        With older keys listed (a rotation in progress) the index key must be pinned: deriving it
        from the new key would silently stop every lookup by phone, email or name from matching.
        """
        active = _decode_key("CLINICFLOW_PHI_KEY", secret_b64)
        previous = [_decode_key("CLINICFLOW_PHI_PREVIOUS_KEYS", k) for k in previous_b64]
        if index_key_b64:
            index_key = _decode_key("CLINICFLOW_PHI_INDEX_KEY", index_key_b64)
        elif previous:
            raise SecurityError(
                "CLINICFLOW_PHI_PREVIOUS_KEYS is set but CLINICFLOW_PHI_INDEX_KEY is not. Lookups "
                "use an index key derived from CLINICFLOW_PHI_KEY, so changing that key would "
                "break them: set CLINICFLOW_PHI_INDEX_KEY to what `clinicflow phi index-key` "
                "prints when run with the old CLINICFLOW_PHI_KEY.",
                code="security.index_key_unpinned",
            )
        else:
            index_key = derive_index_key(active)
        return cls(active=active, index_key=index_key, previous=previous)


def _decode_key(setting: str, value: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except ValueError as exc:
        raise SecurityError(f"{setting} is not valid base64.") from exc
    if len(key) != 32:
        raise SecurityError(f"{setting} must hold 32-byte keys (44 base64 characters each).")
    return key


def derive_index_key(active: bytes) -> bytes:
    """The blind-index key used when CLINICFLOW_PHI_KEY is given and no index key is pinned."""
    return hmac.new(active, b"clinicflow blind index v1", hashlib.sha256).digest()


def key_file_path(keys_dir: Path) -> Path:
    """The PHI key file inside the keys dir."""
    return keys_dir / KEY_FILE_NAME


def write_key_file(path: Path, ring: Keyring) -> None:
    """Write the ring with mode 0600 in a 0700 directory, replacing the file atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(ring.to_json())
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    os.chmod(path, 0o600)
    # The rename is durable only once the directory is synced; key rotation relies on it.
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def load_keyring(
    keys_dir: Path,
    secret_b64: str | None,
    *,
    create: bool = True,
    previous_b64: Sequence[str] = (),
    index_key_b64: str | None = None,
) -> Keyring:
    """The keyring from settings if given, else from the key file (created on first use)."""
    if secret_b64:
        return Keyring.from_secret(
            secret_b64, previous_b64=previous_b64, index_key_b64=index_key_b64
        )
    path = keys_dir / KEY_FILE_NAME
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise SecurityError(
                f"The PHI key file {path} is readable by others (mode {mode:o}); "
                f"run `chmod 600 {path}`."
            )
        return Keyring.from_json(path.read_text())
    if not create:
        raise SecurityError(
            f"No PHI key at {path}. Restore it from your backup (`clinicflow restore`) or set "
            "CLINICFLOW_PHI_KEY; without it the encrypted data cannot be read."
        )
    ring = Keyring.generate()
    write_key_file(path, ring)
    return ring


def keyring_from_settings(settings: Settings, *, create: bool = True) -> Keyring:
    """The keyring the settings describe: CLINICFLOW_PHI_* keys if set, else the key file."""

    def secret(value: SecretStr | None) -> str | None:
        return value.get_secret_value() if value is not None else None

    previous = secret(settings.phi_previous_keys) or ""
    return load_keyring(
        settings.keys_dir,
        secret(settings.phi_key),
        create=create,
        previous_b64=[k for k in previous.split(",") if k.strip()],
        index_key_b64=secret(settings.phi_index_key),
    )


def normalise_for_index(kind: str, value: str) -> str:
    """The canonical form a lookup value is hashed in (digits for phones, casefold for the rest)."""
    if kind == "phone":
        digits = "".join(ch for ch in value if ch.isdigit())
        return digits[-10:] if len(digits) >= 10 else digits
    text = unicodedata.normalize("NFKC", value).strip().casefold()
    return " ".join(text.split())


class _NoncePool:
    """96-bit random nonces cut from one large read of the OS CSPRNG.

    `os.urandom(12)` is a system call per nonce (~5 µs here, a third of an encryption's cost on
    the sync path); reading 12 KiB at a time gives the same randomness at a fraction of the cost.
    A forked child drops its inherited pool, or parent and child would hand out the same nonces.
    """

    _SIZE = 12 * 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buffer = b""
        self._offset = 0
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._buffer, self._offset = b"", 0

    def take(self) -> bytes:
        """The next unused 12-byte nonce."""
        with self._lock:
            if self._offset >= len(self._buffer):
                self._buffer, self._offset = os.urandom(self._SIZE), 0
            start = self._offset
            self._offset = start + 12
            return self._buffer[start : start + 12]


_NONCES = _NoncePool()


class PhiCipher:
    """Encrypts and decrypts PHI with a keyring, and computes blind-index hashes."""

    def __init__(self, ring: Keyring) -> None:
        self.ring = ring
        self._active_id = key_id_for(ring.active)
        self._active = AESGCM(ring.active)
        self._by_id = {kid: AESGCM(k) for kid, k in ring.by_id().items()}

    @property
    def active_key_id(self) -> bytes:
        """The id of the key new ciphertexts use."""
        return self._active_id

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        """Encrypt with the active key, bound to `aad`."""
        nonce = _NONCES.take()
        return FORMAT_V1 + self._active_id + nonce + self._active.encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, aad: bytes) -> bytes:
        """Decrypt a ciphertext made by `encrypt`; SecurityError if it was altered or moved."""
        if len(blob) < 17 or blob[:1] != FORMAT_V1:
            raise SecurityError("An encrypted value has an unknown format.")
        kid, nonce, body = blob[1:5], blob[5:17], blob[17:]
        aead = self._by_id.get(kid)
        if aead is None:
            raise SecurityError(
                f"An encrypted value uses key {kid.hex()}, which this keyring does not hold."
            )
        try:
            return aead.decrypt(nonce, body, aad)
        except InvalidTag as exc:
            raise SecurityError("An encrypted value failed its integrity check.") from exc

    @staticmethod
    def key_id_of(blob: bytes) -> bytes:
        """Which key a ciphertext was made with."""
        return blob[1:5]

    def encrypt_text(self, text: str | None, aad: bytes) -> bytes | None:
        """Encrypt an optional string."""
        return None if text is None else self.encrypt(text.encode(), aad)

    def decrypt_text(self, blob: bytes | None, aad: bytes) -> str | None:
        """Decrypt an optional string."""
        return None if blob is None else self.decrypt(blob, aad).decode()

    def blind_index(self, kind: str, value: str) -> str:
        """Keyed hash for equality lookups by phone, email or name; irreversible without the key."""
        message = f"{kind}:{normalise_for_index(kind, value)}".encode()
        return hmac.new(self.ring.index_key, message, hashlib.sha256).hexdigest()[:32]
