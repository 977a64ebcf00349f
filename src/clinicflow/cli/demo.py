"""`clinicflow demo`: set up the embedded default with a synthetic practice and serve it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from clinicflow.cli.demo_backfill import cancel_one_visit
from clinicflow.cli.runtime import Runtime
from clinicflow.cli.serve import run_web
from clinicflow.cli.sync import sync_with_progress
from clinicflow.engine import Schedule, run_now
from clinicflow.engine.worker import build_runtime
from clinicflow.security.passwords import hashing_for
from clinicflow.store.schema import create_schema
from clinicflow.synth.staff import DemoUser, ensure_demo_users

PRACTICE_DIR = "synthetic-practice"


def demo(
    patients: Annotated[int, typer.Option(help="Patients in the synthetic practice")] = 2000,
    seed: Annotated[int, typer.Option(help="Seed for the synthetic practice")] = 7,
    host: Annotated[str, typer.Option(help="Address to serve on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to serve on")] = 8000,
    serve: Annotated[bool, typer.Option(help="Serve the web app when set up")] = True,
    worker: Annotated[bool, typer.Option(help="Start a queue worker beside the web app")] = True,
) -> None:
    """Create the database, generate and sync a synthetic practice, run automations, serve."""
    rt = Runtime.load()
    say = rt.console.print
    create_schema(rt.db.engine)
    say(f"database ready ({rt.settings.describe()['database']} in {rt.settings.data_dir})")
    practice = rt.settings.data_dir / PRACTICE_DIR
    if (practice / "Patient.ndjson").exists():
        say(f"reusing the synthetic practice in {practice}")
    else:
        from clinicflow.synth import write_practice  # only needed the first time

        today = rt.clock.now().astimezone(ZoneInfo(rt.settings.timezone)).date()
        counts = write_practice(
            practice, seed=seed, patients=patients, anchor_on=today, timezone=rt.settings.timezone
        )
        say(
            f"generated a practice of {patients:,} patients for {today}: "
            f"{sum(counts.values()):,} FHIR resources"
        )
    _sync(rt, practice)
    # The staff exist before anything runs: urgent portal messages alert the demo's clinicians.
    people = _demo_users(rt)
    engine = build_runtime(rt.settings, db=rt.db, cipher=rt.cipher, clock=rt.clock)
    for automation in engine.registry.automations():
        if isinstance(automation.trigger, Schedule):
            outcome = run_now(engine, automation.name, requested_by="demo")
            say(f"ran {automation.name}: {outcome.state}, units {outcome.units or '{}'}")
    story = cancel_one_visit(rt, engine)
    if story:
        say(story)
    _print_demo_users(rt, people)
    if not serve:
        return
    helper = _start_worker() if worker else None
    say(f"\n[bold]clinicflow demo is ready: http://{host}:{port}[/] (sign in as a user above)")
    say("CLI: .venv/bin/clinicflow status | work-items list | automations list | audit verify")
    try:
        run_web(rt, host, port)
    finally:
        if helper is not None:
            helper.terminate()
            helper.wait(timeout=10)


def _demo_users(rt: Runtime) -> list[DemoUser]:
    with rt.db.transaction() as session:
        return ensure_demo_users(
            session, rt.cipher, hashing_for(rt.settings.password_hashing), now=rt.clock.now()
        )


def _print_demo_users(rt: Runtime, people: list[DemoUser]) -> None:
    """How to sign in: demo accounts only (a real practice never sees a secret printed)."""
    say = rt.console.print
    if not people:
        return
    say(
        "\n[bold]Demo sign-in[/] (MFA is required for everyone; add a key to an authenticator "
        f"app, or run [bold].venv/bin/clinicflow users demo-code USERNAME[/]). "
        f"Password for every demo user: [bold]{people[0].password}[/]"
    )
    for p in people:
        say(
            f"  {p.username:<11} {p.role.value:<20} TOTP key {p.totp_secret}",
            markup=False,
            highlight=False,
        )


def _sync(rt: Runtime, folder: Path) -> None:
    report = sync_with_progress(rt, folder)
    rt.console.print(
        f"synced {report.stored:,} resources ({report.created:,} new, {report.updated:,} updated, "
        f"{len(report.rejected)} rejected), {report.events:,} events"
    )


def _start_worker() -> subprocess.Popen[bytes]:
    """A `clinicflow worker` beside the web app, so events and schedules are acted on."""
    exe = Path(sys.executable).parent / "clinicflow"
    return subprocess.Popen([str(exe), "worker"], stdout=subprocess.DEVNULL)  # noqa: S603  (our own script, no shell)
