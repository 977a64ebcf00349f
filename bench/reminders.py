"""Benchmark appointment-reminders: plan and send a 50,000-patient practice's week of reminders.

No arguments. Makes its own temp dirs and its own PostgreSQL database (127.0.0.1:5432, user
postgres), dropped at the end. For SQLite (the embedded default) and for PostgreSQL it:

1. writes the synthetic practice (`clinicflow.synth.write_practice`, anchored on Monday
   2026-11-23) and syncs it with `clinicflow db upgrade` + `clinicflow sync folder` (not timed);
2. in two fresh processes, as a worker with two processes would, steps a FakeClock through the
   next 7 days an hour at a time. At each step the planning process creates the cron run of
   appointment-reminders and carries it out (`execute_run`: plan the visits that came due or
   changed, in a read snapshot; then claim the due touchpoints and record one `message.send`
   effect per message in one short write transaction), then hands the step's effects to the
   sending process and goes on to the next step. The sending process carries them out through
   `engine.batch` at that step's time (one commit per batch for the claims, the send-time checks
   and the sandbox outbox in a few statements per batch), then ticks (reconciliation, effects
   held for quiet hours that came due) and runs the worker's audit-index job (the audit rows of
   the run's contact reads and of the sends are indexed by patient there, in one sorted batch).
   At most one step's effects wait for it; the timer stops when it has sent the last.

Why the sending process ticks, not the planner: the simulated clock moves an hour a step, ~0.1 s
of wall time, so a reconciler ticking in the planner at step N+1 would find the batch the sender
is still carrying out for step N in flight past its lease (120 s of simulated time) and settle it
as `unknown`. In a worker the batch takes well under its lease; here the sender ticks between its
batches, where nothing of its own is in flight.

Why a week at hourly steps: it sends exactly what a week of cron runs would (e-mail 7 days
before, SMS 2 days before, SMS 2 hours before for same-day bookings, catch-ups on the first day,
families folded into one message), through the real planner, claims and effect path. An hour is
the coarsest step that misses no touchpoint (the policy's ON_TIME is one hour); the real cron runs
every 5 minutes, so the fixed cost of a run weighs 12x more in production than here.
`idle_run_s` shows that cost alone.

The synthetic practice books ~630 visits a weekday (34 clinicians, a realistic panel), which makes
~7,000 reminders a week; the issue asks for >= 20,000. So each future visit of the next three weeks
gets BOOKINGS_PER_SLOT - 1 more bookings in the same slot for other patients of the practice (an
overbooked week, written as an extra NDJSON file and synced like the rest).

Prints the figures last, as name=value pairs on one line. Target: reminders_per_s >= 2,000 on
SQLite, peak RSS < 500 MB (`peak_rss_mb`: the two processes' peaks added). BENCH_PATIENTS,
BENCH_EFFECTS=single (one `execute_effect` per effect, as the huey tasks do today) and
BENCH_PROFILE=<file> (cProfile stats of the planning process's week, per database:
<file>.sqlite, <file>.postgresql) change what is run.
"""

from __future__ import annotations

import cProfile
import json
import logging
import multiprocessing
import os
import queue
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import sqlalchemy as sa

BIN = Path(sys.executable).parent
PATIENTS = int(os.environ.get("BENCH_PATIENTS", "50000"))
EFFECT_PATH = os.environ.get("BENCH_EFFECTS", "batch")
PROFILE = os.environ.get("BENCH_PROFILE")
ANCHOR = date(2026, 11, 23)  # a Monday; the synthetic practice's "today"
ZONE = "America/New_York"
START_AT = datetime.combine(ANCHOR, clock_time(0, 0), tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
WEEK = timedelta(days=7)
STEP = timedelta(hours=1)
BOOKINGS_PER_SLOT = 3
# The week's runs plan visits up to 14 days ahead (7-day lead + 7 days of closure slack).
BUSIER_UNTIL = START_AT + WEEK + timedelta(days=15)
NAME = "appointment-reminders"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def write_busier_week(folder: Path, *, seed: int) -> int:
    """Book each future visit's slot for more patients (see the docstring); how many were added."""
    rng = random.Random(seed)
    patients = [
        orjson.loads(line)["id"]
        for line in (folder / "Patient.ndjson").read_bytes().splitlines()
        if line.strip()
    ]
    added = 0
    with (
        (folder / "Appointment.ndjson").open("rb") as source,
        (folder / "Appointment.busier.ndjson").open("wb") as out,
    ):
        for line in source:
            visit = orjson.loads(line)
            if visit.get("status") not in ("booked", "pending") or "start" not in visit:
                continue
            if not START_AT <= datetime.fromisoformat(visit["start"]) < BUSIER_UNTIL:
                continue
            for _ in range(BOOKINGS_PER_SLOT - 1):
                out.write(orjson.dumps(_another_booking(visit, rng, patients)) + b"\n")
                added += 1
    return added


def _another_booking(
    visit: dict[str, Any], rng: random.Random, patients: list[str]
) -> dict[str, Any]:
    clone = {k: v for k, v in visit.items() if k != "slot"}  # an overbooking has no slot of its own
    clone["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    patient = {"actor": {"reference": f"Patient/{rng.choice(patients)}"}, "status": "accepted"}
    clone["participant"] = [
        patient if p["actor"]["reference"].startswith("Patient/") else p
        for p in visit["participant"]
    ]
    return clone


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLINICFLOW_")}
    return {
        **env,
        "CLINICFLOW_DATA_DIR": str(data_dir),
        "CLINICFLOW_TIMEZONE": ZONE,
        "CLINICFLOW_PRACTICE_NAME": "Sunrise Family Practice",
        "CLINICFLOW_PRACTICE_PHONE": "+15555550100",
        **extra,
    }


@contextmanager
def pg_database() -> Iterator[str]:
    """A new, empty PostgreSQL database for this run, dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"cf_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(label: str, practice: Path, env: dict[str, str], work: Path) -> dict[str, Any]:
    """Sync the practice (untimed), then simulate the week in a process of its own."""
    cli = str(BIN / "clinicflow")
    subprocess.run([cli, "db", "upgrade"], env=env, check=True, capture_output=True, cwd=work)
    started = time.perf_counter()
    synced = subprocess.run(
        [cli, "sync", "folder", str(practice)], env=env, capture_output=True, text=True, cwd=work
    )
    if synced.returncode != 0:
        sys.stderr.write(synced.stderr)
        raise SystemExit(f"{label}: sync failed with exit code {synced.returncode}")
    print(f"{label}: synced in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    child_env = {**env, "BENCH_LABEL": label}
    proc = subprocess.Popen(
        [sys.executable, __file__, "--week"],
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=work,
    )
    out, err = proc.communicate()
    if proc.returncode != 0:
        sys.stderr.write(err.decode())
        raise SystemExit(f"{label}: the week's simulation failed")
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    print(
        f"{label}: {figures['reminders']} reminders ({figures['visits_reminded']} visits) in "
        f"{figures['timed_s']:.1f}s: runs {figures['runs_s']:.1f}s, "
        f"sends {figures['send_s']:.1f}s, ticks {figures['tick_s']:.1f}s; "
        f"idle run {figures['idle_run_s']:.2f}s; "
        f"effects {figures['effects']}; {figures['peak_rss_mb']} MB",
        file=sys.stderr,
    )
    return figures


@dataclass
class _Collected:
    """The Enqueuer a tick hands its work to: kept here, carried out by the loop."""

    runs: list[Any] = field(default_factory=list)
    effects: list[Any] = field(default_factory=list)

    def enqueue_run(self, run_id: Any) -> None:
        self.runs.append(run_id)

    def enqueue_effect(self, effect_id: Any, *, delay_s: float = 0.0) -> None:
        if delay_s <= 0:
            self.effects.append(effect_id)


def _runtime(clock: Any) -> Any:
    """The engine a worker process builds: this automation only, the bench's clock."""
    from clinicflow.engine import EngineRuntime, Registry
    from clinicflow.security.phi import PhiCipher, keyring_from_settings
    from clinicflow.settings import Settings
    from clinicflow.store import Database

    settings = Settings()
    db = Database.from_url(settings.resolved_database_url)
    return EngineRuntime.build(
        db=db,
        settings=settings,
        clock=clock,
        cipher=PhiCipher(keyring_from_settings(settings, create=False)),
        registry=Registry([Registry.load().get(NAME)]),  # its cron only, no other automation
    )


def _send_batches(work: Any, done: Any) -> None:
    """The sending worker process: each step's effects at that step's time, then the tick's
    reconciliation and the effects it found due (held for quiet hours), then the audit-index
    job. Its busy seconds and peak RSS go on `done` once it is handed None."""
    logging.basicConfig(level=logging.ERROR)
    try:
        busy = _send_until_told(work, done)
    except BaseException:
        done.put(("failed", traceback.format_exc()))  # the planner stops at once, not hangs
        raise
    done.put((busy, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))


def _send_until_told(work: Any, done: Any) -> dict[str, float]:
    from clinicflow.clock import FakeClock
    from clinicflow.engine import tick
    from clinicflow.security.audit import catch_up_audit_index

    clock = FakeClock(START_AT)
    rt = _runtime(clock)
    collected = _Collected()
    done.put("ready")
    busy = {"send_s": 0.0, "tick_s": 0.0}
    while (item := work.get()) is not None:
        at, effects = item
        started = time.perf_counter()
        clock.set(at)
        _execute(rt, effects)
        sent = time.perf_counter()
        # The run was scheduled already (its key is taken): this tick's work is the rest.
        tick(rt, collected)
        _execute(rt, collected.effects)
        collected.runs.clear()
        collected.effects.clear()
        # The worker's audit-index job (every minute): index the step's audit rows by patient.
        with rt.db.transaction() as session:
            catch_up_audit_index(session)
        busy["send_s"] += sent - started
        busy["tick_s"] += time.perf_counter() - sent
    rt.db.dispose()
    return busy


def _execute(rt: Any, effects: list[Any]) -> None:
    from clinicflow.engine import execute_effect
    from clinicflow.engine.batch import execute_effects

    if EFFECT_PATH == "single":
        for effect_id in effects:
            execute_effect(rt, effect_id)
    elif effects:
        execute_effects(rt, effects)


def _hand(work: Any, item: Any, sender: Any) -> None:
    """Give the sender a step's effects; if it died, stop with its error instead of waiting."""
    while True:
        try:
            work.put(item, timeout=1.0)
            return
        except queue.Full:
            if not sender.is_alive():
                raise SystemExit("the sending process died") from None


def _from_sender(done: Any, sender: Any) -> Any:
    """The sender's next word: "ready", or its figures at the end; SystemExit if it failed."""
    while True:
        try:
            answer = done.get(timeout=1.0)
        except queue.Empty:
            if not sender.is_alive():
                raise SystemExit("the sending process died") from None
            continue
        if isinstance(answer, tuple) and answer[0] == "failed":
            raise SystemExit(f"the sending process failed:\n{answer[1]}")
        return answer


def simulate_week() -> dict[str, Any]:
    """The timed part, in processes of its own: a week of hourly worker steps."""
    from clinicflow.clock import FakeClock
    from clinicflow.engine import execute_run
    from clinicflow.engine.scheduler import schedule_cron_runs
    from clinicflow.store.engine import AutomationRun, Effect, SandboxMessage

    logging.basicConfig(level=logging.ERROR)  # "missed cron instants coalesced" every hour
    # The worker's second process, started before this one opens the database (a forked child
    # must not share its connections). At most one step's effects wait for it, as a worker's
    # queue would hold them; the planner runs on meanwhile.
    fork = multiprocessing.get_context("fork")
    work, done = fork.Queue(maxsize=1), fork.Queue()
    sender = fork.Process(target=_send_batches, args=(work, done), name="bench-sender")
    sender.start()
    clock = FakeClock(START_AT)
    rt = _runtime(clock)
    db = rt.db
    db.start_checkpointer()  # as `clinicflow worker` does: WAL checkpoints off the commits
    _from_sender(done, sender)  # "ready"
    timers = {"schedule_s": 0.0, "runs_s": 0.0}
    idle: list[float] = []
    profile = cProfile.Profile() if PROFILE else None
    if profile:
        profile.enable()
    cpu_started = time.process_time()
    loop_started = time.perf_counter()
    for step in range(WEEK // STEP):
        clock.set(START_AT + step * STEP)
        started = time.perf_counter()
        runs = schedule_cron_runs(rt, clock.now())
        scheduled = time.perf_counter()
        effects = [e for run_id in runs for e in execute_run(rt, run_id)]
        planned = time.perf_counter()
        _hand(work, (clock.now(), effects), sender)
        timers["schedule_s"] += scheduled - started
        timers["runs_s"] += planned - scheduled
        if not effects:
            idle.append(planned - scheduled)
    _hand(work, None, sender)
    sender_busy, sender_rss_kb = _from_sender(done, sender)
    sender.join()
    timed_s = time.perf_counter() - loop_started  # until the last message went out
    cpu_s = time.process_time() - cpu_started
    if profile:
        profile.disable()
        profile.dump_stats(f"{PROFILE}.{os.environ.get('BENCH_LABEL', 'db')}")
    with db.transaction() as session:
        reminders = session.scalar(sa.select(sa.func.count()).select_from(SandboxMessage))
        by_state = dict(
            session.execute(sa.select(Effect.state, sa.func.count()).group_by(Effect.state)).all()
        )
        units = session.scalars(sa.select(AutomationRun.units)).all()
    return {
        "reminders": int(reminders or 0),
        "visits_reminded": sum(int((u or {}).get("visit_reminded", 0)) for u in units),
        "effects": {str(k): int(v) for k, v in by_state.items()},
        "timed_s": timed_s,
        # The planning process's CPU time over the same loop: on a shared machine it moves far
        # less than the wall clock when other work competes for the cores.
        "cpu_s": cpu_s,
        **timers,
        **sender_busy,
        # Both processes at their peaks at once: an upper bound on what the two held together.
        "peak_rss_mb": round(
            (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + sender_rss_kb) / 1024
        ),
        "idle_run_s": statistics.median(idle) if idle else 0.0,
        "reminders_per_s": int(reminders or 0) / timed_s,
    }


def main() -> None:
    """Write the practice, measure SQLite and PostgreSQL, print the figures."""
    from clinicflow.synth import write_practice

    with tempfile.TemporaryDirectory(prefix="clinicflow-reminders-bench-") as tmp:
        work = Path(tmp)
        practice = work / "practice"
        started = time.perf_counter()
        write_practice(practice, seed=7, patients=PATIENTS, anchor_on=ANCHOR, timezone=ZONE)
        added = write_busier_week(practice, seed=7)
        print(
            f"synth {PATIENTS} patients, {added} extra bookings: "
            f"{time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
        lite = measure("sqlite", practice, _env(work / "sqlite"), work)
        with pg_database() as url:
            pg = measure(
                "postgresql", practice, _env(work / "pg", CLINICFLOW_DATABASE_URL=url), work
            )
    pairs = {
        "patients": PATIENTS,
        "effect_path": EFFECT_PATH,
        "reminders": lite["reminders"],
        "visits_reminded": lite["visits_reminded"],
        "runs_s": round(lite["runs_s"], 1),
        "send_s": round(lite["send_s"], 1),
        "idle_run_s": round(lite["idle_run_s"], 2),
        "reminders_pg": pg["reminders"],
        "runs_s_pg": round(pg["runs_s"], 1),
        "send_s_pg": round(pg["send_s"], 1),
        "reminders_per_s": round(lite["reminders_per_s"]),
        "reminders_per_s_pg": round(pg["reminders_per_s"]),
        "peak_rss_mb": max(lite["peak_rss_mb"], pg["peak_rss_mb"]),
    }
    print(" ".join(f"{k}={v}" for k, v in pairs.items()))


if __name__ == "__main__":
    if sys.argv[1:] == ["--week"]:
        print(json.dumps(simulate_week()))
    else:
        main()
