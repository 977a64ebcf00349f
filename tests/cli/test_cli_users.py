"""`clinicflow users`: the first admin, a lost phone, a leaver, the demo's accounts."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pyotp
import pytest
from cli_process import CLINICFLOW, clinicflow, embedded_env, said

from clinicflow.security.accounts import check_password, check_second_factor
from clinicflow.security.passwords import hashing_for
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.synth.staff import DEMO_PEOPLE, ensure_demo_users


def _add(data_dir: Path, *args: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLINICFLOW, "users", "add", *args, "--password-stdin"],
        input=password + "\n",
        env=embedded_env(data_dir),
        cwd=data_dir,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    assert clinicflow(tmp_path, "db", "upgrade").returncode == 0
    return tmp_path


def test_the_first_admin_is_added_and_listed_without_mfa_until_they_sign_in(
    data_dir: Path,
) -> None:
    added = _add(
        data_dir,
        "ada",
        "--role",
        "admin",
        "--name",
        "Ada Admin",
        password="quiet harbor lantern morning",
    )
    assert added.returncode == 0, added.stderr
    assert "set up MFA" in said(added)
    listed = clinicflow(data_dir, "users", "list", "--json")
    assert json.loads(listed.stdout) == [
        {"username": "ada", "name": "Ada Admin", "role": "admin", "mfa": False, "disabled": False}
    ]


def test_a_weak_password_or_unknown_role_is_one_clear_line(data_dir: Path) -> None:
    short = _add(data_dir, "bob", "--role", "nurse", password="short")
    assert short.returncode != 0
    assert "at least 12 characters" in said(short)
    assert "Traceback" not in short.stderr
    role = _add(data_dir, "bob", "--role", "doctor", password="a long passphrase for bob")
    assert role.returncode != 0
    assert "There is no role 'doctor'" in said(role)


def test_reset_mfa_and_disable_are_audited_and_take_effect(data_dir: Path) -> None:
    assert (
        _add(data_dir, "nora", "--role", "nurse", password="copper meadow violin sunset").returncode
        == 0
    )
    settings = Settings(data_dir=data_dir)
    db = Database.from_url(settings.resolved_database_url)
    cipher = PhiCipher(keyring_from_settings(settings, create=True))
    now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    with db.transaction() as session:
        ensure_demo_users(session, cipher, hashing_for("test"), now=now)
    reset = clinicflow(data_dir, "users", "reset-mfa", "frontdesk")
    assert reset.returncode == 0, reset.stderr
    assert clinicflow(data_dir, "users", "disable", "nora").returncode == 0
    listed = {
        u["username"]: u for u in json.loads(clinicflow(data_dir, "users", "list", "--json").stdout)
    }
    assert listed["frontdesk"]["mfa"] is False
    assert listed["nora"]["disabled"] is True
    verify = clinicflow(data_dir, "audit", "verify")
    assert verify.returncode == 0, verify.stderr


def test_demo_users_cover_every_role_and_sign_in_with_the_printed_key(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    db = Database.from_url(settings.resolved_database_url)
    cipher = PhiCipher(keyring_from_settings(settings, create=True))
    now = datetime(2026, 11, 23, 14, 0, tzinfo=UTC)
    with db.transaction() as session:
        people = ensure_demo_users(session, cipher, hashing_for("test"), now=now)
    with db.transaction() as session:
        again = ensure_demo_users(session, cipher, hashing_for("test"), now=now)
    assert [p.username for p in again] == [p.username for p in people]  # a second demo reuses
    assert {p.role for p in people} == {role for _, _, role in DEMO_PEOPLE}
    nurse = next(p for p in people if p.role.value == "nurse")
    with db.transaction() as session:
        user = check_password(
            session,
            hashing_for("test"),
            username=nurse.username,
            password=nurse.password,
            address="test",
            now=now,
        )
        how = check_second_factor(
            session,
            cipher,
            user_id=user.id,
            code=pyotp.TOTP(nurse.totp_secret).at(now),
            address="test",
            now=now,
        )
    assert how == "totp"
    code = clinicflow(data_dir, "users", "demo-code", "nurse")
    assert code.returncode == 0
    assert code.stdout.strip().isdigit()
    assert len(code.stdout.strip()) == 6
    assert (
        _add(
            data_dir, "realperson", "--role", "nurse", password="granite willow tuesday kettle"
        ).returncode
        == 0
    )
    refused = clinicflow(data_dir, "users", "demo-code", "realperson")
    assert refused.returncode != 0
    assert "not a demo user" in said(refused)
