"""Real `clinicflow worker` processes over one PostgreSQL database and one Redis queue, for the
reminder race and crash tests, and a practice whose reminders are due now.

The workers run on the real clock, so the practice is built around the real "now" and sits in a
time zone where it is early afternoon (quiet hours never hold a text, whenever the suite runs).
The test process shares their database, key and settings, so it can run the automation itself,
enqueue work for them and read what they did.
"""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from tests.automations.reminder_practice import CLINIC, DOCTOR, patient, visit
from tests.engine.engine_harness import REDIS_TEST_URL, forget_redis_queue, redis_answers_or_fail

from clinicflow.automations.reminders import AUTOMATION as REMINDERS
from clinicflow.automations.replies import AUTOMATION as REPLIES
from clinicflow.channels import list_outbox
from clinicflow.channels.sandbox import OutboxMessage
from clinicflow.clock import SystemClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import EngineRuntime, Registry, TaskQueue
from clinicflow.engine.payloads import MESSAGE_SEND
from clinicflow.security.audit import Actor
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.engine import Effect, SandboxMessage

ROOT = Path(__file__).parents[2]
SLOW_OUTBOX = "tests.automations.slow_outbox:AUTOMATION"
WAIT_S = 60.0  # generous: a loaded CI machine is slow, and only a failure waits it out
Resource = dict[str, Any]


def afternoon_zone(now: datetime) -> str:
    """An IANA zone where `now` falls between 14:00 and 15:00, far from quiet hours (Etc/GMT-N
    is N hours *ahead* of UTC: POSIX signs)."""
    ahead = 14 - now.hour  # -9 .. 14, all of which exist as Etc/GMT zones
    if ahead == 0:
        return "Etc/GMT"
    return f"Etc/GMT{'-' if ahead > 0 else '+'}{abs(ahead)}"


@dataclass
class Cluster:
    """A database, a queue and the settings workers get; the workers started so far."""

    tmp_path: Path
    env: dict[str, str]
    settings: Settings
    db: Database
    cipher: PhiCipher
    queue: TaskQueue
    queue_name: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def rt(self) -> EngineRuntime:
        """This process's engine over the cluster (the two reminder automations, real clock)."""
        return EngineRuntime.build(
            db=self.db,
            settings=self.settings,
            clock=SystemClock(),
            cipher=self.cipher,
            registry=Registry([REMINDERS, REPLIES]),
        )

    def start_worker(self, *, threads: int = 2, tick_s: float = 0.5) -> subprocess.Popen[bytes]:
        """`clinicflow worker` as a process of its own, logging to the test's temp dir."""
        log = (self.tmp_path / f"worker-{len(self.procs)}.log").open("wb")
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "clinicflow.cli.engine", "worker"),
                *("--workers", str(threads), "--tick-s", str(tick_s)),
                *("--queue-name", self.queue_name),
            ],
            env=self.env,
            cwd=self.tmp_path,  # no clinicflow.toml from wherever pytest was started
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        return proc

    def wait_until_serving(self, proc: subprocess.Popen[bytes]) -> None:
        """Until the worker has loaded everything and its consumer takes tasks."""
        log = self.tmp_path / f"worker-{self.procs.index(proc)}.log"
        self.wait_for(lambda: b'"worker started"' in log.read_bytes(), "a worker to start")

    def stop_all(self) -> None:
        """Ctrl-C every worker still alive; kill those that do not stop."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        """The end of each worker's log, for a failure message."""
        return "\n".join(
            f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.tmp_path.glob("worker-*.log"))
        )

    def wait_for(self, ready: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
        """Poll until `ready()`; fail with the workers' logs after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.02)
        pytest.fail(f"timed out waiting for {what}; worker logs:\n{self.logs()}")

    def sync(self, resources: list[Resource]) -> None:
        """Ingest these resources as an EHR export, into the cluster's database."""
        folder = self.tmp_path / f"export-{uuid.uuid4().hex[:8]}"
        folder.mkdir()
        by_type: dict[str, list[bytes]] = {}
        for resource in resources:
            by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
        for rtype, lines in by_type.items():
            (folder / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
        report = sync_folder(self.db, self.cipher, SystemClock(), folder)
        assert not report.rejected, report.rejected

    def outbox_per_key(self) -> dict[str, int]:
        """How many sandbox messages each effect key has."""
        with self.db.transaction() as session:
            rows = session.execute(
                select(SandboxMessage.effect_key, func.count()).group_by(SandboxMessage.effect_key)
            ).all()
        return {key: int(n) for key, n in rows}

    def outbox(self) -> list[OutboxMessage]:
        """What the sandbox delivered, decrypted (newest first)."""
        with self.db.transaction() as session:
            return list_outbox(
                session, self.cipher, reader=Actor.user("test"), now=SystemClock().now()
            )

    def sends(self) -> list[Effect]:
        """Every message.send effect, oldest first."""
        with self.db.transaction() as session:
            query = select(Effect).where(Effect.kind == MESSAGE_SEND).order_by(Effect.id)
            return list(session.scalars(query))


@contextmanager
def running_cluster(
    tmp_path: Path, pg_url: str, *, lease_s: float, send_delay_s: float, **settings: str
) -> Iterator[Cluster]:
    """A cluster over `pg_url` and a queue of its own in the test Redis; `settings` (by field
    name) go to the workers' environment and to this process's Settings alike."""
    redis_answers_or_fail()
    queue_name = f"cf-remind-{uuid.uuid4().hex[:10]}"
    fields = {
        "data_dir": str(tmp_path),
        "database_url": pg_url,
        "redis_url": REDIS_TEST_URL,
        "phi_key": base64.b64encode(os.urandom(32)).decode(),
        "timezone": afternoon_zone(SystemClock().now()),
        "effect_lease_s": str(lease_s),
        "practice_name": "Sunrise Clinic",
        "log_level": "INFO",
        **settings,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    env |= {f"CLINICFLOW_{name.upper()}": value for name, value in fields.items()}
    env |= {
        "CLINICFLOW_EXTRA_AUTOMATIONS": SLOW_OUTBOX,
        "CLINICFLOW_TEST_SEND_DELAY_S": str(send_delay_s),
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
    }
    resolved = Settings(**fields)  # type: ignore[arg-type]  # pydantic parses the strings
    db = Database.from_url(pg_url)
    cluster = Cluster(
        tmp_path=tmp_path,
        env=env,
        settings=resolved,
        db=db,
        cipher=PhiCipher(keyring_from_settings(resolved, create=False)),
        queue=TaskQueue.redis(REDIS_TEST_URL, name=queue_name),
        queue_name=queue_name,
    )
    try:
        yield cluster
    finally:
        cluster.stop_all()
        db.dispose()
        forget_redis_queue(queue_name)


@dataclass(frozen=True)
class Roster:
    """A practice's resources and what its reminders must cover."""

    resources: list[Resource]
    expected: set[tuple[str, str]]  # (appointment id, touchpoint)
    phone_of: dict[str, str]  # appointment id -> the mobile its reminder goes to


def due_practice(now: datetime, *, texts: int, emails: int = 0, families: int = 0) -> Roster:
    """`texts` visits due their "sms-2d" text now (the first `families` pairs of them share a
    phone, a second visit 20 minutes after the first: one message lists both) and `emails`
    visits due their "email-7d" e-mail now. Every visit was booked weeks ago."""
    booked = now - timedelta(days=20)
    resources: list[Resource] = [DOCTOR, CLINIC]
    expected: set[tuple[str, str]] = set()
    phone_of: dict[str, str] = {}
    for i in range(texts):
        shared = i < 2 * families
        mobile = f"+1555{(i // 2 if shared else i):07d}"
        start = now + timedelta(days=2, minutes=-5 + (20 if shared and i % 2 else 0))
        resources += [patient(f"p{i}", f"Pat{i}", mobile=mobile)]
        resources += [visit(f"a{i}", f"p{i}", start, booked=booked)]
        expected.add((f"a{i}", "sms-2d"))
        phone_of[f"a{i}"] = mobile
    for j in range(emails):
        pid, aid = f"e{j}", f"ae{j}"
        resources += [patient(pid, f"Mail{j}", email=f"mail{j}@example.org")]
        resources += [visit(aid, pid, now + timedelta(days=7, minutes=-5), booked=booked)]
        expected.add((aid, "email-7d"))
    return Roster(resources, expected, phone_of)


def reminded(key: str) -> list[tuple[str, str]]:
    """The (appointment id, touchpoint) pairs a reminder's effect key lists
    (`reminder:Appointment/a1+Appointment/a2:sms-2d@…`, see `reminder_key`)."""
    kind, visits, when = key.split(":")
    assert kind == "reminder", key
    touchpoint = when.partition("@")[0]
    return [(ref.removeprefix("Appointment/"), touchpoint) for ref in visits.split("+")]
