"""The staff pages' test practice: an 80-patient synthetic practice synced into SQLite and the
app over it (pytest-xdist spreads the page tests by file, so they live in several files)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.web.staff_practice import DAY
from tests.web.staff_support import staff_settings

from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.synth import write_practice
from clinicflow.web import create_app


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return staff_settings(tmp_path)


@pytest.fixture
def cipher(settings: Settings) -> PhiCipher:
    return PhiCipher(keyring_from_settings(settings, create=False))


@pytest.fixture
def practice(sqlite_db: Database, cipher: PhiCipher, clock: FakeClock, tmp_path: Path) -> Path:
    folder = tmp_path / "practice"
    write_practice(folder, seed=5, patients=80, anchor_on=DAY, timezone="America/New_York")
    sync_folder(sqlite_db, cipher, clock, folder)
    return folder


@pytest.fixture
def app_client(sqlite_db: Database, clock: FakeClock, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=sqlite_db, clock=clock)) as client:
        yield client
