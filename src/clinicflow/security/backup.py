"""Backups: the database and the keys that open it, together, in a folder any dialect can load.

A backup folder (0700, every file 0600):
  manifest.json            written last, so its presence means the backup is complete
  tables/<table>.jsonl.gz  every table's rows (format in `clinicflow.store.backup`)
  keys/                    a copy of the keys dir: without it the encrypted data is unreadable
  audit-anchors/           the audit chain's daily head anchors
The format is the same for SQLite and PostgreSQL, so a restore also moves a practice between them.
Keys and ciphertexts travel together: whoever holds a backup holds the PHI. Keep backups on
encrypted storage, with the same care as the server.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, inspect, select, text

import clinicflow
from clinicflow.clock import Clock
from clinicflow.errors import InputError, SecurityError, StoreError
from clinicflow.security.audit import (
    Actor,
    anchor_dir_for,
    read_anchors,
    record_access,
)
from clinicflow.security.audit_verify import VerifyResult, verify_chain
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.security.registry import encrypted_columns
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.backup import (
    dump_table,
    first_table_with_rows,
    load_table,
    reset_sequences,
    snapshot,
)
from clinicflow.store.models import metadata
from clinicflow.store.schema import create_schema

__all__ = ["BackupReport", "RestoreReport", "read_manifest", "restore_backup", "write_backup"]

FORMAT = 1
MANIFEST = "manifest.json"
BACKUP_ACTOR = Actor.system("backup")
RESTORE_ACTOR = Actor.system("restore")
Progress = Callable[[str, int, int], None]  # table, rows done, rows in the table


@dataclass(frozen=True, slots=True)
class BackupReport:
    """Rows written per table, and anything the person should know (e.g. keys not included)."""

    directory: Path
    rows: dict[str, int]
    warnings: list[str]


@dataclass(frozen=True, slots=True)
class RestoreReport:
    """Rows loaded per table, key files put back, and the restored audit chain's verification."""

    rows: dict[str, int]
    key_files: list[str]
    audit: VerifyResult


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _files_in(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.endswith(".tmp"))


def _copy_files(source: Path, target: Path, prefix: str) -> dict[str, str]:
    """Copy the files of `source` into `target` (0600); return {prefix/name: sha256}."""
    target.mkdir(mode=0o700)
    for path in _files_in(source):
        _write_private(target / path.name, path.read_bytes())
    return {f"{prefix}/{p.name}": _sha256(p) for p in _files_in(target)}


def _alembic_revision(conn: Connection) -> str | None:
    if "alembic_version" not in inspect(conn).get_table_names():
        return None
    revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    return None if revision is None else str(revision)


def write_backup(
    db: Database,
    settings: Settings,
    clock: Clock,
    target: Path,
    *,
    on_progress: Progress | None = None,
) -> BackupReport:
    """Write every table, the keys and the audit anchors to `target` (a new or empty folder)."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(
            "Back up into a new or empty folder, so no older backup is mixed in.",
            where=str(target),
            code="backup.target_not_empty",
        )
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    (target / "tables").mkdir(mode=0o700)
    with db.transaction() as session:  # committed first, so the backup holds its own audit row
        record_access(session, BACKUP_ACTOR, "export", [], at=clock.now(), detail={"to": "backup"})
    tables, rows = [], {}
    with snapshot(db, target) as conn:
        revision = _alembic_revision(conn)
        for table in metadata.sorted_tables:
            path = target / "tables" / f"{table.name}.jsonl.gz"
            rows[table.name] = dump_table(conn, table, path)
            if on_progress:
                on_progress(table.name, rows[table.name], rows[table.name])
            tables.append(
                {
                    "name": table.name,
                    "rows": rows[table.name],
                    "file": f"tables/{path.name}",
                    "sha256": _sha256(path),
                    "columns": [c.name for c in table.columns],
                }
            )
    files = _copy_files(settings.keys_dir, target / "keys", "keys")
    anchors = anchor_dir_for(settings.data_dir)
    files |= _copy_files(anchors, target / "audit-anchors", "audit-anchors")
    warnings = []
    if settings.phi_key is not None:
        warnings.append(
            "The PHI key comes from CLINICFLOW_PHI_KEY and is not in this backup. Keep it (and "
            "CLINICFLOW_PHI_INDEX_KEY and CLINICFLOW_PHI_PREVIOUS_KEYS, if set) with the backup, "
            "or the encrypted data in it cannot be read."
        )
    manifest = {
        "format": FORMAT,
        "clinicflow_version": clinicflow.__version__,
        "created_at": clock.now().isoformat(),
        "source_dialect": db.dialect,
        "alembic_revision": revision,
        "tables": tables,
        "files": files,
    }
    _write_private(target / MANIFEST, json.dumps(manifest, indent=2).encode())
    return BackupReport(target, rows, warnings)


def read_manifest(source: Path) -> dict[str, Any]:
    """The manifest of the backup in `source`, once every file matches its sha256 and every
    table and column is one this version knows."""
    path = source / MANIFEST
    if not path.is_file():
        raise InputError(
            "This folder holds no complete backup (manifest.json is missing).",
            where=str(source),
            code="backup.no_manifest",
        )
    manifest: dict[str, Any] = json.loads(path.read_text())
    if manifest.get("format") != FORMAT:
        raise InputError(
            f"This backup has format {manifest.get('format')!r}; this clinicflow reads format "
            f"{FORMAT}. Restore it with clinicflow {manifest.get('clinicflow_version')}.",
            where=str(source),
            code="backup.format",
        )
    expected = {t["file"]: t["sha256"] for t in manifest["tables"]} | manifest["files"]
    for name, digest in expected.items():
        if not (source / name).is_file() or _sha256(source / name) != digest:
            raise SecurityError(
                f"The backup file {name} is missing or was changed after the backup was made; "
                "use another copy of this backup.",
                code="backup.corrupt",
            )
    for entry in manifest["tables"]:
        table = metadata.tables.get(entry["name"])
        unknown = sorted(set(entry["columns"]) - set(table.c.keys())) if table is not None else []
        if table is None or unknown:
            raise InputError(
                f"This backup (clinicflow {manifest['clinicflow_version']}, revision "
                f"{manifest['alembic_revision']}) has table {entry['name']} {unknown or ''} "
                "which this version does not know. Restore it with that version, then upgrade.",
                code="backup.version",
            )
    return manifest


def _refuse_overwrite(source: Path, target: Path) -> None:
    for path in _files_in(source):
        there = target / path.name
        if there.exists() and there.read_bytes() != path.read_bytes():
            raise SecurityError(
                f"{there} already exists and differs from the backup's copy. It may be the only "
                "key to another database: move it somewhere safe, then restore again.",
                code="backup.would_overwrite",
            )


def _place_files(source: Path, target: Path) -> list[str]:
    """Put `source`'s files into `target` (0600), keeping identical files already there."""
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(target, 0o700)
    for path in _files_in(source):
        if not (target / path.name).exists():
            _write_private(target / path.name, path.read_bytes())
    return [p.name for p in _files_in(source)]


def _check_counts(conn: Connection, manifest: dict[str, Any]) -> None:
    for entry in manifest["tables"]:
        table = metadata.tables[entry["name"]]
        found = conn.execute(select(func.count()).select_from(table)).scalar_one()
        if found != entry["rows"]:
            raise StoreError(
                f"Table {table.name} holds {found} rows after loading, but the backup has "
                f"{entry['rows']}. Nothing was kept; try the restore again.",
                code="backup.count_mismatch",
                retryable=False,
            )


def _check_keys_open_data(conn: Connection, settings: Settings) -> None:
    """Decrypt one value per encrypted column, so a wrong key is found now, not by a patient."""
    cipher: PhiCipher | None = None
    for column in encrypted_columns():
        if metadata.tables.get(column.table.name) is not column.table:
            continue
        value = column.table.c[column.column]
        row = conn.execute(select(column.table).where(value.isnot(None)).limit(1)).first()
        if row is None:
            continue
        cipher = cipher or PhiCipher(keyring_from_settings(settings, create=False))
        try:
            cipher.decrypt(row._mapping[column.column], column.aad(row))
        except SecurityError as exc:
            raise SecurityError(
                f"The restored key does not open the restored data ({column.name}): this "
                "backup's keys belong to another database, or CLINICFLOW_PHI_KEY is wrong. "
                "Nothing was kept in the database.",
                code="backup.wrong_key",
            ) from exc


def restore_backup(
    db: Database,
    settings: Settings,
    clock: Clock,
    source: Path,
    *,
    accept_broken_audit: bool = False,
    on_progress: Progress | None = None,
) -> RestoreReport:
    """Load the backup in `source` into an empty database and put its keys in the data dir.

    Rows load in one transaction, so a failed restore leaves the database empty. Key and anchor
    files are placed first and stay if the load fails (they match the backup, so a retry agrees).
    """
    manifest = read_manifest(source)
    busy = first_table_with_rows(db, metadata.sorted_tables)
    if busy is not None:
        raise InputError(
            f"The database already holds data (table {busy} has rows). Restore only into an "
            "empty database: create a new one and point CLINICFLOW_DATABASE_URL at it.",
            where=db.engine.url.render_as_string(hide_password=True),
            code="backup.target_not_empty",
        )
    anchor_dir = anchor_dir_for(settings.data_dir)
    _refuse_overwrite(source / "keys", settings.keys_dir)
    _refuse_overwrite(source / "audit-anchors", anchor_dir)
    key_files = _place_files(source / "keys", settings.keys_dir)
    _place_files(source / "audit-anchors", anchor_dir)
    create_schema(db.engine)
    rows = {}
    with db.transaction() as session:
        conn = session.connection()
        for entry in manifest["tables"]:
            table, total = metadata.tables[entry["name"]], entry["rows"]
            on_rows = (
                (lambda n, t=table.name, m=total: on_progress(t, n, m)) if on_progress else None
            )
            rows[table.name] = load_table(conn, table, source / entry["file"], on_rows)
        reset_sequences(conn, metadata.sorted_tables)
        _check_counts(conn, manifest)
        audit = verify_chain(session, read_anchors(anchor_dir))
        if audit.problem is not None and not accept_broken_audit:
            raise SecurityError(
                f"The backup's audit log is broken. {audit.problem.message} Nothing was loaded. "
                "To restore it anyway (the break is then recorded in the audit log), run restore "
                "again with --accept-broken-audit.",
                code="backup.audit_broken",
            )
        _check_keys_open_data(conn, settings)
        detail = {
            "backup_created_at": manifest["created_at"],
            "from": manifest["source_dialect"],
            "rows": sum(rows.values()),
            "audit_break": None if audit.problem is None else str(audit.problem.kind),
        }
        record_access(session, RESTORE_ACTOR, "restore", [], at=clock.now(), detail=detail)
    return RestoreReport(rows, key_files, audit)
