"""Benchmark message-triage: messages per second through classification and routing, and how
long an urgent message takes to reach the on-call nurse's phone with a worker running.

No arguments; its own temp data dir (the embedded default: SQLite, huey on SQLite, sandbox
channels). Two parts:

1. `msgs_per_s`: N patients' messages (texts of the shipped training set, cycled, so every pool
   and both languages are in the mix) are stored as the API stores them (not timed), then, in
   this one process on one core, each `message.received` becomes a message-triage run through
   the engine (`dispatch_events`, `execute_run`), and its effects are carried out: the work
   item in the pool and the acknowledgement in the sandbox outbox (for urgent ones, the on-call
   alert too). Timed from the first dispatch to the last effect done. The model is trained
   (or loaded) before the clock starts, as a worker does at its first message.
   `classify_per_s` is the decision alone (`Triage.decide_many`), for comparison.
2. `escalation_s`: `clinicflow worker` runs as its own process (default tick, the 0.5 s event
   loop); a nurse on the rota has an alert phone. An urgent message is stored (committed) and
   the clock runs until the alert to her phone is in the sandbox outbox. Median of 5.

Prints the figures last, as name=value pairs on one line. Targets: msgs_per_s >= 500 on one
core, escalation_s < 5. BENCH_MESSAGES changes N (default 3,000); BENCH_PROFILE=<file> writes
cProfile stats of the timed routing loop.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

MESSAGES = int(os.environ.get("BENCH_MESSAGES", "3000"))
NURSE_PHONE = "+15557770001"
BIN = Path(sys.executable).parent


def _settings(data_dir: Path):  # type: ignore[no-untyped-def]
    from clinicflow.settings import Settings

    return Settings(data_dir=data_dir, practice_name="Bench Practice", timezone="America/New_York")


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    return env | {
        "CLINICFLOW_DATA_DIR": str(data_dir),
        "CLINICFLOW_PRACTICE_NAME": "Bench Practice",
        "CLINICFLOW_TRIAGE_MODEL_DIR": str(data_dir.parent / "models"),
    }


def throughput(data_dir: Path) -> dict[str, float]:
    from clinicflow.automations.triage import AUTOMATION as TRIAGE
    from clinicflow.automations.triage.automation import triage_for
    from clinicflow.automations.triage.intake import post_message
    from clinicflow.automations.triage.model import training_set
    from clinicflow.clock import SystemClock
    from clinicflow.engine import EngineRuntime, Registry, dispatch_events, execute_run
    from clinicflow.engine.batch import execute_effects
    from clinicflow.security.audit import Actor
    from clinicflow.security.phi import PhiCipher, keyring_from_settings
    from clinicflow.store import Database
    from clinicflow.store.engine import WorkItem

    settings = _settings(data_dir)
    db = Database.from_url(settings.resolved_database_url)
    cipher = PhiCipher(keyring_from_settings(settings))
    clock = SystemClock()
    texts = [e.text for e in training_set()]
    chosen = [texts[n % len(texts)] for n in range(MESSAGES)]
    triage = triage_for(settings)  # trained or loaded, as at a worker's first message
    started = time.perf_counter()
    triage.decide_many(chosen)
    classify_s = time.perf_counter() - started

    with db.transaction() as session:
        for text in chosen:
            post_message(
                session,
                cipher,
                text=text,
                patient_id=None,
                language=None,
                thread_ref=None,
                by=Actor.user("bench"),
                now=clock.now(),
            )
    rt = EngineRuntime.build(
        db=db, settings=settings, clock=clock, cipher=cipher, registry=Registry([TRIAGE])
    )
    profile = None
    if os.environ.get("BENCH_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    cpu0, started = time.process_time(), time.perf_counter()
    while True:
        with db.transaction() as session:
            runs = dispatch_events(session, registry=rt.registry, now=clock.now(), limit=500)
        if not runs:
            break
        effects = [e for run_id in runs for e in execute_run(rt, run_id)]
        execute_effects(rt, effects)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu0
    if profile is not None:
        profile.disable()
        profile.dump_stats(os.environ["BENCH_PROFILE"])
    with db.transaction() as session:
        items = session.scalar(select(func.count()).select_from(WorkItem)) or 0
    if items != MESSAGES:
        raise SystemExit(f"{items} work items for {MESSAGES} messages: routing lost some")
    return {
        "messages": MESSAGES,
        "msgs_per_s": round(MESSAGES / elapsed),
        "route_cpu_s": round(cpu, 2),
        "classify_per_s": round(MESSAGES / classify_s),
    }


def escalation(data_dir: Path) -> float:
    from clinicflow.automations.triage.intake import post_message
    from clinicflow.channels import list_outbox
    from clinicflow.clock import SystemClock
    from clinicflow.oncall.rota import add_shift
    from clinicflow.security.accounts import create_user, set_alert_phone
    from clinicflow.security.audit import Actor
    from clinicflow.security.passwords import hashing_for
    from clinicflow.security.permissions import Role
    from clinicflow.security.phi import PhiCipher, keyring_from_settings
    from clinicflow.store import Database

    settings = _settings(data_dir)
    db = Database.from_url(settings.resolved_database_url)
    cipher = PhiCipher(keyring_from_settings(settings))
    clock = SystemClock()
    with db.transaction() as session:
        create_user(
            session,
            hashing_for("test"),
            username="nurse1",
            display_name="Nurse One",
            role=Role.NURSE,
            password="violet harbour lantern 42",  # noqa: S106  (a bench account)
            now=clock.now(),
            created_by="bench",
        )
        set_alert_phone(session, username="nurse1", phone=NURSE_PHONE, by="bench", now=clock.now())
        add_shift(
            session,
            username="nurse1",
            starts_at=clock.now() - timedelta(hours=1),
            ends_at=clock.now() + timedelta(hours=8),
            note="",
            by="bench",
            now=clock.now(),
        )
    log = (data_dir / "worker.log").open("wb")
    worker = subprocess.Popen(
        [BIN / "clinicflow", "worker", "--workers", "2"],
        env=_env(data_dir),
        cwd=data_dir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while b'"worker started"' not in (data_dir / "worker.log").read_bytes():
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("the worker did not start; see " + str(data_dir / "worker.log"))
            time.sleep(0.1)
        took = []
        for n in range(5):
            with db.transaction() as session:
                before = len(_alerts(session, cipher, list_outbox, clock))
                started = time.perf_counter()
                post_message(
                    session,
                    cipher,
                    text=f"my husband is having chest pain and can't breathe ({n})",
                    patient_id=None,
                    language=None,
                    thread_ref=None,
                    by=Actor.user("bench"),
                    now=clock.now(),
                )
            while True:
                with db.transaction() as session:
                    if len(_alerts(session, cipher, list_outbox, clock)) > before:
                        break
                if time.perf_counter() - started > 60:
                    raise SystemExit("no on-call alert within 60 s")
                time.sleep(0.02)
            took.append(time.perf_counter() - started)
        return statistics.median(took)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        log.close()


def _alerts(session, cipher, list_outbox, clock):  # type: ignore[no-untyped-def]
    from clinicflow.security.audit import Actor

    messages = list_outbox(session, cipher, reader=Actor.user("bench"), now=clock.now())
    return [m for m in messages if m.to == NURSE_PHONE]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cf-bench-triage-") as tmp:
        first, second = Path(tmp) / "throughput", Path(tmp) / "escalation"
        for folder in (first, second):
            folder.mkdir()
            subprocess.run(
                [BIN / "clinicflow", "db", "upgrade"],
                env=_env(folder),
                cwd=folder,
                check=True,
                capture_output=True,
            )
        # One trained model for this process and the worker, as a practice's worker and CLI
        # share the data dir's.
        os.environ["CLINICFLOW_TRIAGE_MODEL_DIR"] = str(Path(tmp) / "models")
        figures = throughput(first)
        figures["escalation_s"] = round(escalation(second), 2)
    print(" ".join(f"{k}={v}" for k, v in figures.items()))


if __name__ == "__main__":
    main()
