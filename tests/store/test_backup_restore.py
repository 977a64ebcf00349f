"""`clinicflow backup` / `restore`: data and keys together, SQLite to SQLite and to PostgreSQL."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import SecretStr

from clinicflow.clock import FakeClock
from clinicflow.errors import InputError, SecurityError
from clinicflow.security.audit import (
    Actor,
    anchor_dir_for,
    read_anchors,
    record_access,
    write_head_anchor,
)
from clinicflow.security.audit_verify import verify_chain
from clinicflow.security.backup import read_manifest, restore_backup, write_backup
from clinicflow.security.phi import Keyring, PhiCipher, keyring_from_settings, load_keyring
from clinicflow.security.registry import (
    encrypted_columns,
    forget_encrypted_column,
    register_encrypted_column,
)
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import audit_log, drop_append_only_ddl
from clinicflow.store.models import metadata
from clinicflow.store.replica import FhirResource
from clinicflow.store.schema import create_schema

resources = metadata.tables["fhir_resources"]


def body_aad(row: sa.Row[object]) -> bytes:
    return f"{row.resource_type}/{row.fhir_id}".encode()


@pytest.fixture(autouse=True)
def bodies_registered() -> Iterator[None]:
    """fhir_resources.body is registered as encrypted (restoring whatever was registered before)."""
    before = {c.name: c for c in encrypted_columns()}
    register_encrypted_column(resources, "body", body_aad)
    yield
    forget_encrypted_column("fhir_resources", "body")
    if (old := before.get("fhir_resources.body")) is not None:
        register_encrypted_column(old.table, old.column, old.aad, old.pk)


@dataclass
class Practice:
    """A clinicflow install: its settings and its database."""

    settings: Settings
    db: Database


@pytest.fixture
def source(tmp_path: Path, clock: FakeClock) -> Iterator[Practice]:
    """A SQLite practice with 30 encrypted resources, audit rows and a head anchor."""
    data_dir = tmp_path / "source"
    settings = Settings(
        data_dir=data_dir, database_url=f"sqlite:///{data_dir / 'cf.db'}", phi_key=None
    )
    db = Database.from_url(settings.resolved_database_url)
    create_schema(db.engine)
    cipher = PhiCipher(keyring_from_settings(settings))
    with db.transaction() as session:
        for n in range(1, 31):
            body = json.dumps(
                {"resourceType": "Patient", "id": f"p{n}", "name": [{"family": f"F{n}"}]}
            )
            session.add(
                FhirResource(
                    resource_type="Patient",
                    fhir_id=f"p{n}",
                    version_id="1",
                    last_updated=clock.now() - timedelta(days=n),
                    content_hash=f"{n:032x}",
                    body=cipher.encrypt(body.encode(), f"Patient/p{n}".encode()),
                    patient_id=f"p{n}",
                    source="folder",
                    local_change=n % 2 == 0,
                    ingested_at=clock.now(),
                    updated_at=clock.now(),
                )
            )
        refs = [f"Patient/p{n}" for n in range(1, 31)]
        record_access(session, Actor.system("sync"), "sync", refs, at=clock.now(), detail={"n": 30})
    with db.transaction() as session:
        record_access(session, Actor.user("alice"), "read", ["Patient/p3"], at=clock.now())
    with db.transaction() as session:
        write_head_anchor(session, anchor_dir_for(data_dir), clock.now())
    yield Practice(settings, db)
    db.dispose()


def target_for(tmp_path: Path, url: str) -> Practice:
    data_dir = tmp_path / "target"
    return Practice(
        Settings(data_dir=data_dir, database_url=url, phi_key=None), Database.from_url(url)
    )


def rows_of(db: Database, table: sa.Table) -> list[dict[str, object]]:
    with db.engine.connect() as conn:
        query = sa.select(table).order_by(*table.primary_key.columns)
        return [dict(row._mapping) for row in conn.execute(query)]


def test_a_backup_restores_into_an_empty_practice_and_its_data_decrypts(
    source: Practice, any_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    backup = write_backup(source.db, source.settings, clock, tmp_path / "backup")
    target = target_for(tmp_path, any_db_url)
    clock.advance(timedelta(hours=1))
    seen: list[tuple[str, int, int]] = []

    report = restore_backup(
        target.db,
        target.settings,
        clock,
        tmp_path / "backup",
        on_progress=lambda *a: seen.append(a),
    )

    assert report.rows == backup.rows
    assert report.rows["fhir_resources"] == 30
    assert report.key_files == ["phi.json"]
    assert ("fhir_resources", 30, 30) in seen
    assert rows_of(target.db, resources) == rows_of(source.db, resources)
    cipher = PhiCipher(load_keyring(target.settings.keys_dir, None, create=False))
    with target.db.engine.connect() as conn:
        row = conn.execute(sa.select(resources).where(resources.c.fhir_id == "p7")).one()
    assert json.loads(cipher.decrypt(row.body, b"Patient/p7"))["name"] == [{"family": "F7"}]
    assert (target.settings.keys_dir / "phi.json").stat().st_mode & 0o777 == 0o600
    assert target.settings.keys_dir.stat().st_mode & 0o777 == 0o700
    target.db.dispose()


def test_the_restored_audit_chain_verifies_and_records_the_backup_and_the_restore(
    source: Practice, any_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    write_backup(source.db, source.settings, clock, tmp_path / "backup")
    target = target_for(tmp_path, any_db_url)

    report = restore_backup(target.db, target.settings, clock, tmp_path / "backup")

    assert report.audit.ok
    assert report.audit.anchors_checked == 1
    with target.db.transaction() as session:
        result = verify_chain(session, read_anchors(anchor_dir_for(target.settings.data_dir)))
    assert result.ok
    actions = [(r["actor"], r["action"]) for r in rows_of(target.db, audit_log)]
    assert actions == [
        ("sync", "sync"),
        ("alice", "read"),
        ("backup", "export"),
        ("restore", "restore"),
    ]
    target.db.dispose()


def test_new_rows_after_a_restore_get_fresh_ids(
    source: Practice, any_db_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    write_backup(source.db, source.settings, clock, tmp_path / "backup")
    target = target_for(tmp_path, any_db_url)
    restore_backup(target.db, target.settings, clock, tmp_path / "backup")

    with target.db.transaction() as session:
        row = FhirResource(
            resource_type="Patient",
            fhir_id="new",
            content_hash="0" * 32,
            body=b"",
            source="local",
            ingested_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(row)
        session.flush()
        assert row.id == 31
    target.db.dispose()


def test_backup_files_are_private_and_listed_with_their_hashes(
    source: Practice, tmp_path: Path, clock: FakeClock
) -> None:
    folder = tmp_path / "backup"
    write_backup(source.db, source.settings, clock, folder)

    manifest = read_manifest(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    for path in folder.rglob("*"):
        assert path.stat().st_mode & 0o777 == (0o700 if path.is_dir() else 0o600), path
    assert manifest["source_dialect"] == "sqlite"
    assert set(manifest["files"]) == {"keys/phi.json", "audit-anchors/2026-11-23.jsonl"}
    by_name = {t["name"]: t for t in manifest["tables"]}
    assert by_name["fhir_resources"]["rows"] == 30
    assert [t["name"] for t in manifest["tables"]] == [t.name for t in metadata.sorted_tables]
    with gzip.open(folder / by_name["fhir_resources"]["file"], "rt") as lines:
        first = json.loads(next(iter(lines)))
    assert base64.b64decode(first["body"])[:1] == b"\x01"
    assert first["ingested_at"] == "2026-11-23T14:00:00+00:00"


def test_a_backup_goes_only_into_a_new_or_empty_folder(
    source: Practice, tmp_path: Path, clock: FakeClock
) -> None:
    folder = tmp_path / "backup"
    folder.mkdir()
    (folder / "old.txt").write_text("older backup")

    with pytest.raises(InputError, match="new or empty folder"):
        write_backup(source.db, source.settings, clock, folder)


def test_a_key_from_settings_is_not_in_the_backup_and_the_report_says_so(
    source: Practice, tmp_path: Path, clock: FakeClock
) -> None:
    key = base64.b64encode(Keyring.generate().active).decode()
    settings = source.settings.model_copy(update={"phi_key": SecretStr(key)})

    report = write_backup(source.db, settings, clock, tmp_path / "backup")

    assert "CLINICFLOW_PHI_KEY" in report.warnings[0]


def test_restore_refuses_a_database_that_holds_data(
    source: Practice, sqlite_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    write_backup(source.db, source.settings, clock, tmp_path / "backup")
    target = target_for(tmp_path, sqlite_url)
    create_schema(target.db.engine)
    with target.db.transaction() as session:
        record_access(session, Actor.user("bob"), "read", [], at=clock.now())

    with pytest.raises(InputError, match="already holds data"):
        restore_backup(target.db, target.settings, clock, tmp_path / "backup")
    assert not target.settings.keys_dir.exists()


def test_restore_refuses_a_backup_file_changed_after_the_backup(
    source: Practice, sqlite_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    write_backup(source.db, source.settings, clock, tmp_path / "backup")
    dump = tmp_path / "backup" / "tables" / "fhir_resources.jsonl.gz"
    dump.write_bytes(gzip.compress(b"{}\n"))
    target = target_for(tmp_path, sqlite_url)

    with pytest.raises(SecurityError, match=r"tables/fhir_resources.jsonl.gz .* changed"):
        restore_backup(target.db, target.settings, clock, tmp_path / "backup")


def test_restore_never_replaces_a_different_key(
    source: Practice, sqlite_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    write_backup(source.db, source.settings, clock, tmp_path / "backup")
    target = target_for(tmp_path, sqlite_url)
    own_key = keyring_from_settings(target.settings)  # creates a key of its own

    with pytest.raises(SecurityError, match="move it somewhere safe"):
        restore_backup(target.db, target.settings, clock, tmp_path / "backup")
    assert load_keyring(target.settings.keys_dir, None, create=False) == own_key


def test_restore_with_a_key_that_does_not_open_the_data_keeps_nothing(
    source: Practice, sqlite_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    key = base64.b64encode(Keyring.generate().active).decode()
    settings = source.settings.model_copy(update={"phi_key": SecretStr(key)})
    write_backup(source.db, settings, clock, tmp_path / "backup")
    (tmp_path / "backup" / "keys" / "phi.json").unlink()  # as if keys lived only in settings
    manifest = json.loads((tmp_path / "backup" / "manifest.json").read_text())
    del manifest["files"]["keys/phi.json"]
    (tmp_path / "backup" / "manifest.json").write_text(json.dumps(manifest))
    target = target_for(tmp_path, sqlite_url)
    target.settings = target.settings.model_copy(update={"phi_key": SecretStr(key)})

    with pytest.raises(SecurityError, match="does not open the restored data"):
        restore_backup(target.db, target.settings, clock, tmp_path / "backup")
    with target.db.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(resources)).scalar() == 0


def test_a_backup_with_a_broken_audit_chain_is_restored_only_when_accepted(
    source: Practice, sqlite_url: str, tmp_path: Path, clock: FakeClock
) -> None:
    attacker = sa.create_engine(source.db.engine.url)
    with attacker.begin() as conn:
        for statement in drop_append_only_ddl("sqlite"):
            conn.exec_driver_sql(statement)
        conn.execute(audit_log.update().where(audit_log.c.seq == 2).values(actor="mallory"))
    attacker.dispose()
    write_backup(source.db, source.settings, clock, tmp_path / "backup")
    target = target_for(tmp_path, sqlite_url)

    with pytest.raises(SecurityError, match="Row 2 was changed"):
        restore_backup(target.db, target.settings, clock, tmp_path / "backup")
    report = restore_backup(
        target.db, target.settings, clock, tmp_path / "backup", accept_broken_audit=True
    )

    assert report.audit.problem is not None
    assert rows_of(target.db, audit_log)[-1]["detail"]["audit_break"] == "edited"
