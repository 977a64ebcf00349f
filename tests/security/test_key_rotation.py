"""`phi rotate-key`: every row moves to a new key, a crash loses nothing, a rerun finishes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from clinicflow.clock import FakeClock
from clinicflow.errors import SecurityError
from clinicflow.security.phi import (
    Keyring,
    PhiCipher,
    derive_index_key,
    key_file_path,
    keyring_from_settings,
    load_keyring,
    register_encrypted_column,
)
from clinicflow.security.registry import (
    EncryptedColumn,
    encrypted_columns,
    forget_encrypted_column,
)
from clinicflow.security.rotation import RotationProgress, rotate_key
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import audit_log

# A table of the test's own, outside Base.metadata, so no other test sees it.
test_metadata = sa.MetaData()
notes = sa.Table(
    "rotation_notes",
    test_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("fhir_id", sa.String(64), nullable=False),
    sa.Column("body", sa.LargeBinary, nullable=True),
)


def note_aad(row: sa.Row[object]) -> bytes:
    return f"Communication/{row.fhir_id}".encode()


NOTES_BODY = EncryptedColumn(notes, "body", note_aad)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings whose key file is in a temp data dir (and no key in the environment)."""
    return Settings(data_dir=tmp_path / "var", phi_key=None)


@pytest.fixture
def notes_db(db: Database, settings: Settings) -> Database:
    """A database with 25 encrypted notes and one empty one, under the key file's first key."""
    test_metadata.create_all(db.engine)
    cipher = PhiCipher(load_keyring(settings.keys_dir, None))
    rows: list[dict[str, object]] = [
        {
            "id": n,
            "fhir_id": f"c{n}",
            "body": cipher.encrypt(f"note {n}".encode(), f"Communication/c{n}".encode()),
        }
        for n in range(1, 26)
    ]
    rows.append({"id": 26, "fhir_id": "c26", "body": None})
    with db.transaction() as session:
        session.execute(notes.insert(), rows)
    return db


def bodies(db: Database, cipher: PhiCipher) -> dict[int, str | None]:
    with db.engine.connect() as conn:
        rows = conn.execute(sa.select(notes).order_by(notes.c.id)).all()
    return {row.id: cipher.decrypt_text(row.body, note_aad(row)) for row in rows}


def key_ids(db: Database) -> set[bytes]:
    with db.engine.connect() as conn:
        blobs = conn.execute(sa.select(notes.c.body).where(notes.c.body.isnot(None))).scalars()
        return {PhiCipher.key_id_of(blob) for blob in blobs}


def test_every_row_moves_to_the_new_key_and_the_old_key_is_dropped(
    notes_db: Database, settings: Settings, clock: FakeClock
) -> None:
    before = load_keyring(settings.keys_dir, None, create=False)
    seen: list[RotationProgress] = []

    report = rotate_key(
        notes_db, settings, clock, batch_size=7, columns=[NOTES_BODY], on_progress=seen.append
    )

    after = load_keyring(settings.keys_dir, None, create=False)
    assert report.complete
    assert (report.generated_key, report.old_keys_dropped) == (True, True)
    assert report.reencrypted == {"rotation_notes.body": 25}
    assert after.active != before.active
    assert after.previous == []
    assert after.index_key == before.index_key  # lookups stay valid
    assert key_ids(notes_db) == {PhiCipher(after).active_key_id}
    assert bodies(notes_db, PhiCipher(after)) == {n: f"note {n}" for n in range(1, 26)} | {26: None}
    assert seen[-1] == RotationProgress("rotation_notes.body", 25, 25)
    assert key_file_path(settings.keys_dir).stat().st_mode & 0o777 == 0o600


def test_the_rotation_is_audited_at_start_and_finish(
    notes_db: Database, settings: Settings, clock: FakeClock
) -> None:
    report = rotate_key(notes_db, settings, clock, columns=[NOTES_BODY])

    with notes_db.engine.connect() as conn:
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
    assert [(r.actor_kind, r.actor, r.action) for r in rows] == [
        ("system", "key-rotation", "rotate-key")
    ] * 2
    assert rows[0].detail["phase"] == "started"
    assert rows[1].detail == {
        "phase": "finished",
        "key_id": report.key_id,
        "reencrypted": {"rotation_notes.body": 25},
        "rows_left_on_old_keys": 0,
        "old_keys_dropped": True,
    }


class SimulatedCrashError(Exception):
    """Stands in for the process dying between two batches."""


def test_a_crash_mid_rotation_leaves_every_row_readable_and_a_rerun_finishes(
    notes_db: Database, settings: Settings, clock: FakeClock
) -> None:
    def crash_after_first_batch(progress: RotationProgress) -> None:
        if progress.done >= 10:
            raise SimulatedCrashError

    with pytest.raises(SimulatedCrashError):
        rotate_key(
            notes_db,
            settings,
            clock,
            batch_size=10,
            columns=[NOTES_BODY],
            on_progress=crash_after_first_batch,
        )

    halfway = load_keyring(settings.keys_dir, None, create=False)
    assert len(halfway.previous) == 1
    assert len(key_ids(notes_db)) == 2  # some rows on each key
    assert bodies(notes_db, PhiCipher(halfway))[25] == "note 25"

    report = rotate_key(notes_db, settings, clock, batch_size=10, columns=[NOTES_BODY])

    done = load_keyring(settings.keys_dir, None, create=False)
    assert report.complete
    assert not report.generated_key
    assert report.reencrypted == {"rotation_notes.body": 15}
    assert done.active == halfway.active
    assert key_ids(notes_db) == {PhiCipher(done).active_key_id}


def test_a_row_that_cannot_be_decrypted_is_named_and_the_old_key_is_kept(
    notes_db: Database, settings: Settings, clock: FakeClock
) -> None:
    cipher = PhiCipher(load_keyring(settings.keys_dir, None, create=False))
    moved = cipher.encrypt(b"someone else's note", b"Communication/c1")
    with notes_db.transaction() as session:
        session.execute(notes.update().where(notes.c.id == 7).values(body=moved))

    report = rotate_key(notes_db, settings, clock, columns=[NOTES_BODY])

    assert not report.complete
    assert report.rows_left_on_old_keys == 1
    assert report.unreadable == {"rotation_notes.body": ["7"]}
    assert report.reencrypted == {"rotation_notes.body": 24}
    assert not report.old_keys_dropped
    assert len(load_keyring(settings.keys_dir, None, create=False).previous) == 1


def test_a_key_from_settings_is_refused_with_the_steps_to_rotate_it(
    notes_db: Database, tmp_path: Path, clock: FakeClock
) -> None:
    key = base64.b64encode(Keyring.generate().active).decode()
    settings = Settings(data_dir=tmp_path / "var", phi_key=key)

    with pytest.raises(SecurityError) as caught:
        rotate_key(notes_db, settings, clock, columns=[NOTES_BODY])

    assert "CLINICFLOW_PHI_PREVIOUS_KEYS" in caught.value.message
    assert "clinicflow phi index-key" in caught.value.message


def test_with_keys_in_settings_rotation_reencrypts_to_the_configured_key(
    db: Database, tmp_path: Path, clock: FakeClock
) -> None:
    old, new = Keyring.generate().active, Keyring.generate().active
    b64 = base64.b64encode
    test_metadata.create_all(db.engine)
    old_cipher = PhiCipher(Keyring.from_secret(b64(old).decode()))
    with db.transaction() as session:
        session.execute(
            notes.insert(),
            [{"id": 1, "fhir_id": "c1", "body": old_cipher.encrypt(b"hi", b"Communication/c1")}],
        )
    settings = Settings(
        data_dir=tmp_path / "var",
        phi_key=b64(new).decode(),
        phi_previous_keys=b64(old).decode(),
        phi_index_key=b64(derive_index_key(old)).decode(),
    )

    report = rotate_key(db, settings, clock, columns=[NOTES_BODY])

    ring = keyring_from_settings(settings)
    assert report.complete
    assert (report.key_source, report.old_keys_dropped) == ("settings", False)
    assert key_ids(db) == {PhiCipher(Keyring(active=new, index_key=ring.index_key)).active_key_id}
    assert ring.index_key == old_cipher.ring.index_key
    assert not key_file_path(settings.keys_dir).exists()


def test_previous_keys_without_a_pinned_index_key_are_refused(tmp_path: Path) -> None:
    b64 = base64.b64encode
    settings = Settings(
        data_dir=tmp_path / "var",
        phi_key=b64(Keyring.generate().active).decode(),
        phi_previous_keys=b64(Keyring.generate().active).decode(),
    )

    with pytest.raises(SecurityError, match="CLINICFLOW_PHI_INDEX_KEY"):
        keyring_from_settings(settings)


@pytest.fixture
def registered_notes() -> Iterator[None]:
    register_encrypted_column(notes, "body", note_aad)
    yield
    forget_encrypted_column("rotation_notes", "body")


@pytest.mark.usefixtures("registered_notes")
def test_rotation_walks_the_registered_columns(
    notes_db: Database, settings: Settings, clock: FakeClock
) -> None:
    assert NOTES_BODY in encrypted_columns()
    report = rotate_key(notes_db, settings, clock)

    assert report.reencrypted["rotation_notes.body"] == 25


def test_registering_a_column_the_table_lacks_is_refused() -> None:
    with pytest.raises(ValueError, match="no column 'text'"):
        register_encrypted_column(notes, "text", note_aad)


def test_without_a_key_file_there_is_nothing_to_rotate(
    sqlite_db: Database, tmp_path: Path, clock: FakeClock
) -> None:
    settings = Settings(data_dir=tmp_path / "fresh", phi_key=None)

    with pytest.raises(SecurityError, match="nothing to rotate"):
        rotate_key(sqlite_db, settings, clock, columns=[NOTES_BODY])
    assert not key_file_path(settings.keys_dir).exists()
