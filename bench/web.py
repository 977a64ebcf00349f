"""Benchmark the Today board over HTTP: 8 signed-in staff asking for it at once, on loopback.

No arguments. Makes its own temp dir. It:

1. writes the synthetic practice (`clinicflow.synth.write_practice`, 50,000 patients, anchored on
   Monday 2026-11-23) and syncs it with `clinicflow db upgrade` + `clinicflow sync folder` (not
   timed);
2. in a process of its own, picks the board's day and makes one front-desk user per client with
   TOTP enrolled (`create_user`, `pending_totp_secret`, `enrol_mfa`, as a first sign-in would),
   with production password hashing (argon2id): only eight sign-ins, so their cost is bearable,
   and the server runs as installed;
3. starts the real server (`clinicflow serve` on a free loopback port, SQLite WAL, PHI encrypted,
   audit on) and waits for /readyz;
4. signs each client in through the pages (/sign-in, then /sign-in/mfa with a TOTP code, CSRF
   tokens from the forms), so each holds a session of its own;
5. has each client ask for `/today?day=...` WARMUP times (not counted), then, all starting
   together, REQUESTS times each, timing every request from send to the last byte read. Every
   answer must be 200, show the board and list the same number of visits;
6. stops the server and checks that the audit log got exactly one `read` row of the Today view per
   request of those users.

The day: the issue speaks of "about 400 appointments today", but the synthetic practice has 600 to
680 visits shown on every weekday of the anchor week (34 clinicians, a realistic panel). The bench
does not thin them out: it takes the weekday of that week whose board is nearest 400 and prints
its count as `today_visits`. More rows is the harder case. The server's clock is the real one, so
the day is passed as `?day=`. No reminders have been sent in this practice, so the board's
"reminders sent" count finds no rows to count.

Prints the figures last, as name=value pairs on one line. Target: today_p95_ms < 150.
BENCH_PATIENTS changes the practice's size, BENCH_CLIENTS the number of clients (1 gives the
latency of a request that waits for no other); BENCH_DATA_DIR=<a synced data dir> copies that
instead of writing and syncing one (for iterating; it must have been synced at this anchor).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import psutil
import pyotp

BIN = Path(sys.executable).parent
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "50000"))
PREPARED = os.environ.get("BENCH_DATA_DIR")
ANCHOR = date(2026, 11, 23)  # a Monday; the synthetic practice's "today"
ZONE = "America/New_York"
WANTED_VISITS = 400
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
# One server process per core, as a practice would run it (`clinicflow serve --workers`).
SERVER_WORKERS = int(os.environ.get("BENCH_SERVER_WORKERS", str(os.cpu_count() or 1)))
WARMUP = 3
REQUESTS = 50  # per client
PASSWORD = "correct horse battery staple 7"  # noqa: S105  (a throwaway bench account)
READY_TIMEOUT_S = 60.0
VISIT_ROW = re.compile(r'<tr class="visit ')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    return {
        **env,
        "CLINICFLOW_DATA_DIR": str(data_dir),
        "CLINICFLOW_TIMEZONE": ZONE,
        "CLINICFLOW_PRACTICE_NAME": "Sunrise Family Practice",
        "CLINICFLOW_PRACTICE_PHONE": "+15555550100",
        "CLINICFLOW_PASSWORD_HASHING": "production",
        "CLINICFLOW_LOG_LEVEL": "WARNING",
    }


def build_practice(work: Path, env: dict[str, str]) -> None:
    """Write and sync the practice into the data dir (or copy BENCH_DATA_DIR); not timed."""
    cli = str(BIN / "clinicflow")
    if PREPARED:
        shutil.copytree(PREPARED, env["CLINICFLOW_DATA_DIR"], symlinks=True)
        subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=work)
        print(f"copied {PREPARED}", file=sys.stderr)
        return
    from clinicflow.synth import write_practice

    practice = work / "practice"
    started = time.perf_counter()
    write_practice(practice, seed=7, patients=PATIENTS, anchor_on=ANCHOR, timezone=ZONE)
    print(f"synth {PATIENTS} patients: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=work)
    started = time.perf_counter()
    synced = subprocess.run(
        [cli, "sync", "folder", str(practice)], env=env, capture_output=True, text=True, cwd=work
    )
    if synced.returncode != 0:
        sys.stderr.write(synced.stderr)
        raise SystemExit(f"sync failed with exit code {synced.returncode}")
    print(f"synced in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def _child(mode: str, env: dict[str, str], work: Path) -> dict[str, Any]:
    """Run this file in `mode` with the server's settings; its last stdout line is JSON."""
    done = subprocess.run(
        [sys.executable, __file__, mode], env=env, capture_output=True, text=True, cwd=work
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"{mode} failed with exit code {done.returncode}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def prepare() -> dict[str, Any]:
    """In the child: the day to show (board nearest WANTED_VISITS), one enrolled user per client."""
    from zoneinfo import ZoneInfo

    from clinicflow.boards import TodayFilters, today_board
    from clinicflow.clock import SystemClock
    from clinicflow.security.accounts import create_user, enrol_mfa, pending_totp_secret
    from clinicflow.security.passwords import hashing_for
    from clinicflow.security.permissions import Role
    from clinicflow.security.phi import PhiCipher, keyring_from_settings
    from clinicflow.settings import Settings
    from clinicflow.store import Database

    settings = Settings()
    db = Database.from_url(settings.resolved_database_url)
    cipher = PhiCipher(keyring_from_settings(settings, create=False))
    zone = ZoneInfo(settings.timezone)
    week = [ANCHOR + timedelta(days=n) for n in range(5)]
    with db.transaction() as session:
        counts = {
            day: len(today_board(session, cipher, day=day, zone=zone, filters=TodayFilters()))
            for day in week
        }
    day = min(week, key=lambda d: (abs(counts[d] - WANTED_VISITS), d))
    hashing = hashing_for(settings.password_hashing)
    # Enrolled as of 90 s ago, so the code of that step is spent and the sign-in's code is new.
    enrolled_at = SystemClock().now() - timedelta(seconds=90)
    users = []
    for number in range(1, CLIENTS + 1):
        username = f"bench-desk-{number}"
        with db.transaction() as session:
            user = create_user(
                session,
                hashing,
                username=username,
                display_name=f"Bench Desk {number}",
                role=Role.FRONT_DESK,
                password=PASSWORD,
                now=enrolled_at,
                created_by="bench",
            )
            secret = pending_totp_secret(session, cipher, user_id=user.id)
            code = pyotp.TOTP(secret).at(enrolled_at)
            enrol_mfa(session, cipher, user_id=user.id, code=code, address="bench", now=enrolled_at)
        users.append({"username": username, "secret": secret})
    db.dispose()
    return {
        "day": day.isoformat(),
        "counts": {d.isoformat(): n for d, n in counts.items()},
        "users": users,
    }


def audited() -> dict[str, Any]:
    """In the child: the Today views in the audit log, per bench user, and their references."""
    import sqlalchemy as sa

    from clinicflow.settings import Settings
    from clinicflow.store import Database
    from clinicflow.store.audit import audit_log

    db = Database.from_url(Settings().resolved_database_url)
    rows = 0
    refs = 0
    with db.transaction() as session:
        found = session.execute(
            sa.select(audit_log.c.actor, audit_log.c.detail, audit_log.c.resources).where(
                audit_log.c.action == "read", audit_log.c.actor.like("bench-desk-%")
            )
        )
        for _actor, detail, resources in found:
            if (detail or {}).get("view") == "today":
                rows += 1
                refs = max(refs, len(resources or []))
    db.dispose()
    return {"rows": rows, "refs": refs}


def _tree(process: psutil.Process) -> list[psutil.Process]:
    return [process, *process.children(recursive=True)]


def _tree_cpu_s(process: psutil.Process) -> float:
    """CPU seconds of the server and its worker processes."""
    return sum(p.cpu_times().user + p.cpu_times().system for p in _tree(process))


def _tree_rss_mb(process: psutil.Process) -> int:
    """Resident memory of the server and its worker processes, after the run."""
    return round(sum(p.memory_info().rss for p in _tree(process)) / 2**20)


def free_port() -> int:
    """A loopback port nobody listens on (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(env: dict[str, str], work: Path, port: int) -> subprocess.Popen[bytes]:
    """`clinicflow serve` on `port`, answering /readyz."""
    with (work / "server.log").open("wb") as log:
        proc = subprocess.Popen(
            [
                str(BIN / "clinicflow"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(SERVER_WORKERS),
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=work,
        )
    started = time.perf_counter()
    while time.perf_counter() - started < READY_TIMEOUT_S:
        if proc.poll() is not None:
            break
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                print(f"server ready in {time.perf_counter() - started:.1f}s", file=sys.stderr)
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    sys.stderr.write((work / "server.log").read_text()[-4000:])
    raise SystemExit("the server did not become ready")


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    if not found:
        raise SystemExit("a sign-in page has no CSRF token")
    return found.group(1)


def sign_in(base_url: str, user: dict[str, str]) -> httpx.Client:
    """A client holding its own full session: password, then the TOTP code, through the pages."""
    client = httpx.Client(base_url=base_url, timeout=30)
    form = client.get("/sign-in")
    answer = client.post(
        "/sign-in",
        data={
            "username": user["username"],
            "password": PASSWORD,
            "csrf_token": _csrf(form.text),
            "next": "/",
        },
    )
    if answer.status_code != 303:
        raise SystemExit(f"{user['username']}: password step answered {answer.status_code}")
    mfa = client.get(answer.headers["location"])
    done = client.post(
        "/sign-in/mfa",
        data={"code": pyotp.TOTP(user["secret"]).now(), "csrf_token": _csrf(mfa.text), "next": "/"},
    )
    if done.status_code != 303:
        raise SystemExit(f"{user['username']}: MFA step answered {done.status_code}")
    return client


def board_rows(response: httpx.Response) -> int:
    """The visits listed on a Today page; exits on anything but the board."""
    if response.status_code != 200 or "<h1>Today" not in response.text:
        raise SystemExit(f"/today answered {response.status_code}: {response.text[:200]!r}")
    return len(VISIT_ROW.findall(response.text))


def hammer(clients: list[httpx.Client], path: str) -> tuple[list[float], set[int], float]:
    """Warm up, then all clients ask REQUESTS times each at once: latencies (ms), rows, wall s."""
    latencies: list[list[float]] = [[] for _ in clients]
    seen: set[int] = set()
    failures: list[BaseException] = []
    start_line = threading.Barrier(len(clients) + 1)

    def work(number: int, client: httpx.Client) -> None:
        try:
            for _ in range(WARMUP):
                seen.add(board_rows(client.get(path)))
            start_line.wait()
            for _ in range(REQUESTS):
                started = time.perf_counter()
                response = client.get(path)
                response.read()
                latencies[number].append((time.perf_counter() - started) * 1000)
                seen.add(board_rows(response))
        except BaseException as exc:  # noqa: BLE001  (reported by the main thread, then exit)
            failures.append(exc)
            start_line.abort()

    threads = [
        threading.Thread(target=work, args=(n, c), daemon=True) for n, c in enumerate(clients)
    ]
    for thread in threads:
        thread.start()
    with contextlib.suppress(threading.BrokenBarrierError):  # a client failed: reported below
        start_line.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    if failures:
        raise SystemExit(f"a client failed: {failures[0]!r}")
    return [ms for per_client in latencies for ms in per_client], seen, wall_s


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    """Build the practice, serve it, measure the board, check the audit log, print the figures."""
    with tempfile.TemporaryDirectory(prefix="clinicflow-web-bench-") as tmp:
        work = Path(tmp)
        env = _env(work / "data")
        build_practice(work, env)
        prepared = _child("--prepare", env, work)
        day = prepared["day"]
        print(f"board counts {prepared['counts']}; showing {day}", file=sys.stderr)
        port = free_port()
        server = start_server(env, work, port)
        try:
            clients = [sign_in(f"http://127.0.0.1:{port}", u) for u in prepared["users"]]
            print(f"{len(clients)} clients signed in", file=sys.stderr)
            process = psutil.Process(server.pid)
            cpu_before = _tree_cpu_s(process)
            latencies, seen, wall_s = hammer(clients, f"/today?day={day}")
            cpu_after = _tree_cpu_s(process)
            rss_mb = _tree_rss_mb(process)
            for client in clients:
                client.close()
        finally:
            server.terminate()
            _pid, status, _usage = os.wait4(server.pid, 0)  # its exit status
            server.returncode = os.waitstatus_to_exitcode(status)
        if len(seen) != 1:
            raise SystemExit(f"the board listed different numbers of visits: {sorted(seen)}")
        visits = seen.pop()
        if visits != prepared["counts"][day]:
            raise SystemExit(f"the board listed {visits} visits, the service {prepared['counts']}")
        audit = _child("--audit", env, work)
    requests = len(latencies)
    expected_rows = CLIENTS * (WARMUP + REQUESTS)
    if audit["rows"] != expected_rows:
        raise SystemExit(f"{audit['rows']} audit rows for {expected_rows} requests")
    cpu_s = cpu_after - cpu_before
    print(
        f"{requests} requests in {wall_s:.1f}s by {CLIENTS} clients; server CPU {cpu_s:.1f}s; "
        f"{audit['rows']} audit rows of up to {audit['refs']} references",
        file=sys.stderr,
    )
    pairs = {
        "patients": PATIENTS if not PREPARED else "prepared",
        "day": day,
        "today_visits": visits,
        "clients": CLIENTS,
        "requests": requests,
        "requests_per_s": round(requests / wall_s, 1),
        "server_cpu_ms_per_request": round(cpu_s * 1000 / requests, 1),
        "audit_rows": audit["rows"],
        "server_workers": SERVER_WORKERS,
        "server_rss_mb": rss_mb,
        "today_mean_ms": round(statistics.fmean(latencies), 1),
        "today_p99_ms": round(_percentile(latencies, 0.99), 1),
        "today_p50_ms": round(_percentile(latencies, 0.50), 1),
        "today_p95_ms": round(_percentile(latencies, 0.95), 1),
    }
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--prepare"]:
        print(json.dumps(prepare()))
    elif sys.argv[1:] == ["--audit"]:
        print(json.dumps(audited()))
    else:
        main()
