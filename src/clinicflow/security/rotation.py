"""PHI key rotation: re-encrypt every registered column under a new key, in batches, resumably.

Order of work, chosen so that a crash at any point leaves every row readable:
1. write the key file with the new key active and the old one in `previous`;
2. re-encrypt, batch by batch (one transaction each), the rows whose ciphertext names another key;
3. once no row uses an old key, rewrite the key file without them.
A second run after a crash finds `previous` non-empty and resumes at step 2 without a new key.

The blind-index key is not rotated: lookup hashes stay valid as they are, and changing it would
mean rebuilding every lookup row from decrypted bodies. Processes still running with the old
keyring keep writing with the old key until restarted; a row they write before the final check is
re-encrypted, but one written after it could not be read once they restart, so restart the web app
and workers as soon as the rotation starts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import ColumnElement, Connection, LargeBinary, Row, bindparam, func, literal, select

from clinicflow.clock import Clock
from clinicflow.errors import SecurityError
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.phi import (
    Keyring,
    PhiCipher,
    key_file_path,
    key_id_for,
    keyring_from_settings,
    write_key_file,
)
from clinicflow.security.registry import EncryptedColumn, encrypted_columns
from clinicflow.settings import Settings
from clinicflow.store import Database

__all__ = ["RotationProgress", "RotationReport", "rotate_key"]

ROTATION_ACTOR = Actor.system("key-rotation")
# Rows written meanwhile by processes still on the old key are picked up by another pass.
MAX_PASSES = 3
UNREADABLE_SHOWN = 20

ENV_KEY_HOWTO = (
    "The PHI key comes from CLINICFLOW_PHI_KEY, so clinicflow will not replace it itself. To "
    "rotate it: (1) run `clinicflow phi index-key` and set CLINICFLOW_PHI_INDEX_KEY to what it "
    "prints, so lookups by phone, email and name keep working; (2) set "
    "CLINICFLOW_PHI_PREVIOUS_KEYS to the current key and CLINICFLOW_PHI_KEY to a new one "
    "(`openssl rand -base64 32`); (3) restart clinicflow and run `clinicflow phi rotate-key` "
    "again to re-encrypt the data; (4) when it reports that no row uses the old key, remove "
    "CLINICFLOW_PHI_PREVIOUS_KEYS and restart."
)


@dataclass(frozen=True, slots=True)
class RotationProgress:
    """Rows of `column` handled so far, out of `total` that needed it when the pass began."""

    column: str
    done: int
    total: int


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What a rotation did, and what is left for a person to do."""

    key_id: str
    key_source: Literal["file", "settings"]
    # False when an interrupted rotation was finished, or the new key came from settings.
    generated_key: bool
    reencrypted: dict[str, int] = field(default_factory=dict)
    # Rows that could not be decrypted (altered, or on a key no longer held), by column: their ids.
    unreadable: dict[str, list[str]] = field(default_factory=dict)
    # Unreadable rows, and rows written on an old key by processes not yet restarted.
    rows_left_on_old_keys: int = 0
    old_keys_dropped: bool = False

    @property
    def complete(self) -> bool:
        """True when every row uses the new key (and, with a key file, the old keys are gone)."""
        return self.rows_left_on_old_keys == 0


def _start(settings: Settings) -> tuple[Keyring, Literal["file", "settings"], bool]:
    """The keyring to rotate to, where it lives, and whether this run generated its key."""
    path = key_file_path(settings.keys_dir)
    if settings.phi_key is None and not path.exists():
        raise SecurityError(
            f"There is no PHI key file at {path}, so there is nothing to rotate. If this database "
            "holds encrypted data, restore its key from a backup (`clinicflow restore`) first.",
            code="security.no_key",
        )
    ring = keyring_from_settings(settings, create=False)
    if settings.phi_key is not None:
        if not ring.previous:
            raise SecurityError(ENV_KEY_HOWTO, code="security.key_from_settings")
        return ring, "settings", False
    if ring.previous:
        return ring, "file", False
    rotated = Keyring(
        active=AESGCM.generate_key(bit_length=256), index_key=ring.index_key, previous=[ring.active]
    )
    write_key_file(path, rotated)
    return rotated, "file", True


def _stale(column: EncryptedColumn, key_id: bytes) -> ColumnElement[bool]:
    """Rows of `column` whose ciphertext names a key other than `key_id` (bytes 2-5)."""
    value = column.table.c[column.column]
    return value.isnot(None) & (func.substr(value, 2, 4) != literal(key_id, LargeBinary()))


def _count_stale(db: Database, column: EncryptedColumn, key_id: bytes) -> int:
    query = select(func.count()).select_from(column.table).where(_stale(column, key_id))
    with db.transaction() as session:
        return int(session.execute(query).scalar_one())


def _reencrypt_rows(
    conn: Connection, rows: Sequence[Row[Any]], column: EncryptedColumn, cipher: PhiCipher
) -> list[str]:
    """Re-encrypt `rows` with the active key; return the ids of rows that cannot be decrypted."""
    table, name = column.table, column.column
    updates, unreadable = [], []
    for row in rows:
        old = row._mapping[name]
        aad = column.aad(row)
        try:
            plaintext = cipher.decrypt(old, aad)
        except SecurityError:
            unreadable.append(str(row._mapping[column.pk]))
            continue
        new = cipher.encrypt(plaintext, aad)
        updates.append({"_pk": row._mapping[column.pk], "_old": old, "_new": new})
    if updates:
        # Matching the old ciphertext too: a row changed meanwhile is left for the next pass
        # rather than overwritten with stale content.
        statement = (
            table.update()
            .where(table.c[column.pk] == bindparam("_pk"), table.c[name] == bindparam("_old"))
            .values({name: bindparam("_new")})
        )
        conn.execute(statement, updates)
    return unreadable


def _reencrypt_column(
    db: Database,
    column: EncryptedColumn,
    cipher: PhiCipher,
    batch_size: int,
    on_progress: Callable[[RotationProgress], None],
) -> tuple[int, list[str]]:
    """One pass over `column`, one transaction per batch; returns (rows handled, unreadable ids)."""
    key_id, pk = cipher.active_key_id, column.table.c[column.pk]
    total = _count_stale(db, column, key_id)
    done, unreadable, after = 0, [], None
    on_progress(RotationProgress(column.name, 0, total))
    while True:
        query = select(column.table).where(_stale(column, key_id)).order_by(pk).limit(batch_size)
        if after is not None:
            query = query.where(pk > after)
        with db.transaction() as session:
            rows = session.connection().execute(query).all()
            unreadable += _reencrypt_rows(session.connection(), rows, column, cipher)
        if not rows:
            return done - len(unreadable), unreadable
        done, after = done + len(rows), rows[-1]._mapping[column.pk]
        on_progress(RotationProgress(column.name, done, max(total, done)))


def rotate_key(
    db: Database,
    settings: Settings,
    clock: Clock,
    *,
    batch_size: int = 500,
    columns: Sequence[EncryptedColumn] | None = None,
    on_progress: Callable[[RotationProgress], None] | None = None,
) -> RotationReport:
    """Move every registered encrypted column to a new key (or finish an interrupted rotation).

    Owns its transactions, one per batch, so a crash loses at most one batch and a rerun resumes.
    """
    ring, source, generated = _start(settings)
    cipher = PhiCipher(ring)
    key_id = cipher.active_key_id.hex()
    old_ids = sorted(key_id_for(k).hex() for k in ring.previous)
    with db.transaction() as session:
        detail = {"phase": "started", "key_id": key_id, "old_key_ids": old_ids, "new": generated}
        record_access(session, ROTATION_ACTOR, "rotate-key", [], at=clock.now(), detail=detail)
    reencrypted: dict[str, int] = {}
    unreadable: dict[str, list[str]] = {}
    left = 0
    for column in encrypted_columns() if columns is None else columns:
        for _ in range(MAX_PASSES):
            count, failed = _reencrypt_column(
                db, column, cipher, batch_size, on_progress or (lambda _p: None)
            )
            reencrypted[column.name] = reencrypted.get(column.name, 0) + count
            stale = _count_stale(db, column, cipher.active_key_id)
            if stale <= len(failed):
                break
        if failed:
            unreadable[column.name] = failed[:UNREADABLE_SHOWN]
        left += stale
    # Unreadable rows keep the old keys too: if their AAD function was wrong, they are not lost.
    dropped = source == "file" and left == 0
    if dropped:
        write_key_file(
            key_file_path(settings.keys_dir), Keyring(active=ring.active, index_key=ring.index_key)
        )
    with db.transaction() as session:
        detail = {
            "phase": "finished",
            "key_id": key_id,
            "reencrypted": reencrypted,
            "rows_left_on_old_keys": left,
            "old_keys_dropped": dropped,
        }
        record_access(session, ROTATION_ACTOR, "rotate-key", [], at=clock.now(), detail=detail)
    return RotationReport(key_id, source, generated, reencrypted, unreadable, left, dropped)
