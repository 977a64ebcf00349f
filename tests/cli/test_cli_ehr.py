"""`clinicflow ehr keygen|jwks|check` and `sync fhir`, as processes, against the FHIR peer."""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from tests.cli.cli_process import CLINICFLOW, Result, clinicflow, embedded_env, said
from tests.fhir_peer import FhirPeer, PeerConfig, running_peer

from clinicflow.clock import SystemClock
from clinicflow.settings import Settings
from clinicflow.web import create_app

CLIENT_ID = "clinicflow-cli"


def _run(data_dir: Path, base_url: str, *args: str) -> Result:
    env = embedded_env(data_dir) | {
        "CLINICFLOW_FHIR_BASE_URL": base_url,
        "CLINICFLOW_FHIR_CLIENT_ID": CLIENT_ID,
    }
    return subprocess.run(
        [CLINICFLOW, *args], env=env, cwd=data_dir, capture_output=True, text=True, timeout=120
    )


@pytest.fixture(scope="module")
def installed_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One install made by the CLI (schema, signing key), copied for each test: each process
    start costs a second or two, and every test here needs the same install."""
    data_dir = tmp_path_factory.mktemp("installed")
    assert clinicflow(data_dir, "db", "upgrade").returncode == 0
    keygen = clinicflow(data_dir, "ehr", "keygen", "--alg", "RS384")
    assert keygen.returncode == 0, keygen.stderr
    assert "/.well-known/jwks.json" in said(keygen)
    return data_dir


@pytest.fixture
def installed(installed_template: Path, tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    shutil.copytree(installed_template, data_dir)  # copy2: the key file keeps its mode 0600
    return data_dir


@pytest.fixture
def peer_url(installed: Path) -> Iterator[str]:
    jwks = json.loads(clinicflow(installed, "ehr", "jwks").stdout)
    peer = FhirPeer(PeerConfig(clients={CLIENT_ID: jwks}, export_polls=0))
    start = SystemClock().now() + timedelta(days=1)  # the peer runs on real time
    peer.put({"resourceType": "Patient", "id": "p1", "name": [{"family": "Lee"}]})
    peer.put(
        {
            "resourceType": "Appointment",
            "id": "a1",
            "status": "booked",
            "start": start.isoformat(),
            "end": (start + timedelta(minutes=15)).isoformat(),
            "participant": [{"actor": {"reference": "Patient/p1"}, "status": "accepted"}],
        }
    )
    peer.put({"resourceType": "Appointment", "id": "bad", "participant": []})
    with running_peer(peer) as url:
        yield url


def test_keygen_keeps_the_private_key_private_and_publishes_only_the_public_half(installed):
    key_file = installed / "keys" / "ehr-signing-key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    jwks = json.loads(clinicflow(installed, "ehr", "jwks").stdout)
    (key,) = jwks["keys"]
    assert key["alg"] == "RS384"
    assert "d" not in key
    again = clinicflow(installed, "ehr", "keygen")
    assert again.returncode != 0
    assert "--rotate" in said(again)
    web = TestClient(create_app(Settings(data_dir=installed)))
    served = web.get("/.well-known/jwks.json")
    assert served.status_code == 200
    assert served.json() == jwks


def test_check_reports_what_the_ehr_supports(installed, peer_url):
    result = _run(installed, peer_url, "ehr", "check", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["bulk_export"] is True
    assert found["token_endpoint"].endswith("/auth/token")
    assert "system/*.rs" in found["granted_scopes"] or "Patient" in found["granted_scopes"]
    assert found["types"]["Appointment"]["search"] == "ok"


def test_sync_fhir_stores_what_is_good_and_names_what_is_not(installed, peer_url):
    web = TestClient(create_app(Settings(data_dir=installed, fhir_base_url=peer_url)))
    assert web.get("/readyz").json()["checks"]["ehr_sync"].startswith("never synced")
    result = _run(installed, peer_url, "sync", "fhir", "--mode", "search", "--json")
    assert result.returncode == 1, result.stderr  # one resource was rejected
    summary = json.loads(result.stdout)
    assert summary["created"] == 2
    (rejected,) = summary["rejected"]
    assert rejected["where"].startswith("Appointment search page 1 entry")
    assert "Appointment search page 1 entry" in said(result)
    status = json.loads(clinicflow(installed, "status", "--json").stdout)
    assert status["resources"]["Appointment"] == 1
    synced = status["ehr_sync"][peer_url]
    assert synced["current_as_of"] is not None
    assert 0 <= synced["lag_s"] < 120
    readiness = web.get("/readyz").json()
    assert readiness["status"] == "ready"
    assert readiness["checks"]["ehr_sync"].startswith("ok: current as of")


def test_without_an_ehr_sync_fhir_says_which_setting_to_set(tmp_path):
    clinicflow(tmp_path, "db", "upgrade")
    result = clinicflow(tmp_path, "sync", "fhir")
    assert result.returncode == 2
    assert "CLINICFLOW_FHIR_BASE_URL" in said(result)


def test_a_group_sync_without_a_group_id_says_to_add_one(tmp_path):
    result = clinicflow(tmp_path, "sync", "fhir", "--level", "group")
    assert result.returncode == 2
    assert "add --group ID" in said(result)


def test_a_group_sync_by_search_is_refused_with_what_to_change(tmp_path):
    result = clinicflow(
        tmp_path, "sync", "fhir", "--mode", "search", "--level", "group", "--group", "g1"
    )
    assert result.returncode == 2
    assert "leave out --mode search" in said(result)


def test_a_patient_level_sync_says_its_level_and_does_not_claim_the_replica_current(
    installed, peer_url
):
    result = _run(installed, peer_url, "sync", "fhir", "--level", "patient", "--json")
    assert result.returncode == 0, result.stderr  # the bad Appointment names no patient
    summary = json.loads(result.stdout)
    assert (summary["mode"], summary["level"], summary["group"]) == ("bulk", "patient", None)
    assert summary["created"] == 2
    status = json.loads(clinicflow(installed, "status", "--json").stdout)
    assert peer_url not in status["ehr_sync"]


def _status(data_dir: Path, base_url: str) -> dict:
    result = _run(data_dir, base_url, "status", "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_a_worker_syncs_from_the_ehr_on_its_own_and_status_shows_it(installed, peer_url):
    env = embedded_env(installed) | {
        "CLINICFLOW_FHIR_BASE_URL": peer_url,
        "CLINICFLOW_FHIR_CLIENT_ID": CLIENT_ID,
    }
    worker = subprocess.Popen(
        [CLINICFLOW, "worker", "--tick-s", "0.5", "--workers", "1"],
        env=env,
        cwd=installed,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        jobs: dict = {}
        while time.monotonic() < deadline:
            jobs = _status(installed, peer_url)["jobs"]
            if all(jobs.get(n, {}).get("last_finished_at") for n in ("ehr-sync", "ehr-reconcile")):
                break
            time.sleep(0.5)
    finally:
        worker.terminate()
        _, stderr = worker.communicate(timeout=30)
    assert jobs["ehr-sync"]["last_success_at"], stderr
    assert jobs["ehr-sync"]["last_summary"]["created"] == 2  # p1 and a1; "bad" is rejected
    assert jobs["ehr-sync"]["last_summary"]["rejected"] == 1
    assert jobs["ehr-reconcile"]["last_summary"]["listed"] == 1
    status = _status(installed, peer_url)
    assert status["ehr_sync"][peer_url]["lag_s"] is not None
    text = _run(installed, peer_url, "status")
    assert "job ehr-sync: last success" in said(text)


def test_ehr_reconcile_removes_what_the_ehr_deleted_and_says_so(installed):
    jwks = json.loads(clinicflow(installed, "ehr", "jwks").stdout)
    peer = FhirPeer(PeerConfig(clients={CLIENT_ID: jwks}, export_polls=0))
    start = SystemClock().now() + timedelta(days=1)
    for n in (1, 2):
        peer.put(
            {
                "resourceType": "Appointment",
                "id": f"a{n}",
                "status": "booked",
                "start": (start + timedelta(hours=n)).isoformat(),
                "end": (start + timedelta(hours=n, minutes=15)).isoformat(),
                "participant": [{"actor": {"display": "walk-in"}, "status": "accepted"}],
            }
        )
    with running_peer(peer) as url:
        assert _run(installed, url, "sync", "fhir").returncode == 0
        peer.delete("Appointment", "a2")
        result = _run(installed, url, "ehr", "reconcile", "--json")
        assert result.returncode == 0, result.stderr
        found = json.loads(result.stdout)
        assert (found["listed"], found["removed"], found["removed_ids"]) == (1, 1, ["a2"])
        human = _run(installed, url, "ehr", "reconcile")
    assert "1 appointments in the EHR" in said(human) + human.stdout
