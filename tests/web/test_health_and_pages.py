"""The web app as a monitor and a person see it: health, readiness, metrics, the front page."""

from __future__ import annotations

import html
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.web.staff_support import add_person, sign_in, staff_settings

from clinicflow.automations.digest import AUTOMATION
from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import EngineRuntime, Registry, run_now
from clinicflow.security.permissions import Role
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.web import create_app

SAMPLE = Path(__file__).parents[1] / "data" / "synthea-sample"
CLINICFLOW = Path(sys.executable).parent / "clinicflow"
# Nothing listens on port 1: connections are refused at once.
DEAD_REDIS = "redis://127.0.0.1:1/0"


def _settings(tmp_path: Path, *, redis_url: str | None = None) -> Settings:
    """Settings for an embedded install in `tmp_path`, whatever this machine's environment says."""
    return Settings(data_dir=tmp_path, redis_url=redis_url, timezone="America/New_York")


@pytest.fixture
def client(db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    """The app over the `db` fixture: once on SQLite, once on PostgreSQL."""
    with TestClient(create_app(_settings(tmp_path), db=db, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def sqlite_client(sqlite_db: Database, clock: FakeClock, tmp_path: Path) -> Iterator[TestClient]:
    """The app on SQLite only, for behaviour that does not depend on the database."""
    with TestClient(create_app(_settings(tmp_path), db=sqlite_db, clock=clock)) as test_client:
        yield test_client


def _rows(page: str) -> list[str]:
    """The text of each table row, tags removed, as a person reads it."""
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page, flags=re.DOTALL)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in rows]


def test_healthz_says_the_process_is_up(sqlite_client: TestClient) -> None:
    response = sqlite_client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_readyz_reports_the_database_and_the_queue_ok(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "queue": "ok"}}


def test_readyz_is_503_and_names_the_queue_when_redis_does_not_answer(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    app = create_app(_settings(tmp_path, redis_url=DEAD_REDIS), db=db, clock=clock)
    with TestClient(app) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["database"] == "ok"
    assert "job queue (Redis) does not answer" in body["checks"]["queue"]
    assert "CLINICFLOW_REDIS_URL" in body["checks"]["queue"]


def test_metrics_count_resources_by_type_after_a_sync_and_count_requests(
    client: TestClient, db: Database, clock: FakeClock
) -> None:
    sync_folder(db, PhiCipher(Keyring.generate()), clock, SAMPLE)
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(r'^clinicflow_resources\{type="Patient"\} 13\.0$', text, flags=re.M)
    assert re.search(r'^clinicflow_resources\{type="Encounter"\} 150\.0$', text, flags=re.M)
    assert re.search(
        r'^clinicflow_http_requests_total\{method="GET",status="200"\} [1-9]', text, flags=re.M
    )
    assert re.search(r"^clinicflow_work_items_open 0\.0$", text, flags=re.M)


def test_the_automations_page_lists_daily_digest_and_its_latest_run_with_the_state(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    settings = staff_settings(tmp_path)
    engineer = add_person(db, settings, clock, "eli", Role.AUTOMATION_ENGINEER)
    rt = EngineRuntime.build(
        db=db,
        settings=settings,
        clock=clock,
        cipher=PhiCipher(Keyring.generate()),
        registry=Registry([AUTOMATION]),
    )
    outcome = run_now(rt, "daily-digest", requested_by="test")
    with TestClient(create_app(settings, db=db, clock=clock)) as client:
        sign_in(client, engineer, clock)
        response = client.get("/automations")
    assert response.status_code == 200
    rows = _rows(response.text)
    listed = [row for row in rows if row.startswith("daily-digest ")]
    assert listed
    assert "overbooked or empty" in listed[0]
    assert "scheduler" in listed[0]
    assert "live" in listed[0]
    # The run, with its start in the practice's time (14:00 UTC is 09:00 in New York).
    run_rows = [row for row in rows if row.startswith(f"{outcome.run_id} daily-digest")]
    assert len(run_rows) == 1
    assert "Mon 23 Nov 09:00" in run_rows[0]
    assert "succeeded" in run_rows[0]
    assert "provider_day_checked 0" in run_rows[0]


def test_every_response_carries_the_security_headers(sqlite_client: TestClient) -> None:
    for path in ("/", "/healthz", "/readyz", "/metrics", "/static/clinicflow.css", "/missing"):
        headers = sqlite_client.get(path).headers
        policy = headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy, path
        assert "frame-ancestors 'none'" in policy, path
        assert "unsafe-inline" not in policy, path
        assert "unsafe-eval" not in policy, path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["Referrer-Policy"] == "no-referrer", path


def test_the_callers_request_id_is_echoed_and_one_is_made_when_none_is_sent(
    sqlite_client: TestClient,
) -> None:
    echoed = sqlite_client.get("/healthz", headers={"X-Request-ID": "req-7f3a"})
    assert echoed.headers["X-Request-ID"] == "req-7f3a"
    made = [sqlite_client.get("/healthz").headers["X-Request-ID"] for _ in range(2)]
    assert all(re.fullmatch(r"[0-9a-f]{16}", request_id) for request_id in made)
    assert made[0] != made[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    return env | {"CLINICFLOW_DATA_DIR": str(data_dir)}


@pytest.mark.parametrize("workers", [1, 2])
def test_clinicflow_serve_answers_healthz_on_the_port_it_was_given(
    tmp_path: Path, workers: int
) -> None:
    env = _embedded_env(tmp_path)
    upgrade = subprocess.run(
        [CLINICFLOW, "db", "upgrade"], env=env, cwd=tmp_path, capture_output=True, text=True
    )
    assert upgrade.returncode == 0, upgrade.stderr
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [CLINICFLOW, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        response = None
        deadline = time.monotonic() + 20
        while response is None and time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.05)  # the server is still starting: poll again shortly
        assert response is not None, "clinicflow serve did not answer within 20 s"
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5.0)
        assert ready.json()["checks"] == {"database": "ok", "queue": "ok"}
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()
    assert f"serving on http://127.0.0.1:{port}" in (tmp_path / "serve.log").read_text()
