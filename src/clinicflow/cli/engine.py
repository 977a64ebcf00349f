"""`clinicflow automations|run|worker|outbox`: faces over the engine's services.

Mounted by `clinicflow.cli.main`; also runnable alone as `python -m clinicflow.cli.engine`.
"""

from __future__ import annotations

import getpass
import os
from typing import Annotated

import typer
from rich.table import Table

from clinicflow.channels import list_outbox
from clinicflow.cli.runtime import Runtime
from clinicflow.ehr.scheduled import ehr_jobs
from clinicflow.engine import (
    DEFAULT_QUEUE_NAME,
    DEFAULT_TICK_S,
    EXTRA_AUTOMATIONS_ENV,
    OWNER_UNCHANGED,
    EngineRuntime,
    Registry,
    TaskQueue,
    all_switches,
    automation_statuses,
    build_runtime,
    request_run,
    run_now,
    serve,
    set_switch,
)
from clinicflow.engine.worker import audit_index_job
from clinicflow.logs import configure_logging
from clinicflow.security.audit import Actor

automations_app = typer.Typer(help="See automations and switch them on, off or to dry-run.")
outbox_app = typer.Typer(help="Messages the sandbox channel delivered.")
CLI_ACTOR = "cli"

JsonFlag = Annotated[bool, typer.Option("--json", help="Plain JSON on stdout")]


def _extra_automations() -> str | None:
    return os.environ.get(EXTRA_AUTOMATIONS_ENV)


def _engine(rt: Runtime) -> EngineRuntime:
    return build_runtime(rt.settings, db=rt.db, cipher=rt.cipher, clock=rt.clock)


@automations_app.command("list")
def automations_list(json_out: JsonFlag = False) -> None:
    """Every automation, its trigger, owner and switches; plugins that failed to load too."""
    rt = Runtime.load()
    registry = Registry.load(extra=_extra_automations())
    with rt.db.transaction() as session:
        statuses = automation_statuses(registry.listing(), all_switches(session))
    if json_out:
        rt.out(
            [
                {
                    "name": a.name,
                    "summary": a.summary,
                    "trigger": a.trigger,
                    "owner": a.owner,
                    "status": a.status,
                    "enabled": a.switch.enabled,
                    "dry_run": a.switch.dry_run,
                }
                for a in statuses
            ]
        )
        return
    table = Table("name", "trigger", "owner", "mode", "status")
    for a in statuses:
        mode = a.mode if a.status == "loaded" else "-"
        table.add_row(a.name, a.trigger, a.owner, mode, a.status)
    rt.console.print(table)


def _switch(
    name: str,
    *,
    enabled: bool | None = None,
    dry_run: bool | None = None,
    owner: str | object | None = OWNER_UNCHANGED,
) -> None:
    rt = Runtime.load()
    Registry.load(extra=_extra_automations()).get(name)
    with rt.db.transaction() as session:
        switch = set_switch(
            session,
            name,
            actor=CLI_ACTOR,
            now=rt.clock.now(),
            enabled=enabled,
            dry_run=dry_run,
            owner=owner,
        )
    owned = f", owned by {switch.owner}" if switch.owner else ""
    rt.console.print(f"{name} is now {switch.mode}{owned}")


@automations_app.command("enable")
def automations_enable(name: str) -> None:
    """Turn an automation on."""
    _switch(name, enabled=True)


@automations_app.command("disable")
def automations_disable(name: str) -> None:
    """Turn an automation off: no new runs are created for it."""
    _switch(name, enabled=False)


@automations_app.command("dry-run")
def automations_dry_run(name: str, state: Annotated[str, typer.Argument(help="on or off")]) -> None:
    """Record what an automation would do without sending or writing anything (on|off)."""
    if state not in ("on", "off"):
        raise typer.BadParameter("write `on` or `off`", param_hint="STATE")
    _switch(name, dry_run=state == "on")


@automations_app.command("owner")
def automations_owner(
    name: str,
    pool: Annotated[str, typer.Argument(help="The pool that owns it; '-' for the declared one")],
) -> None:
    """Give an automation (and the work items it opens) to another pool."""
    _switch(name, owner=None if pool == "-" else pool)


def run(
    name: Annotated[str, typer.Argument(help="The automation to run")],
    now: Annotated[str | None, typer.Option("--now", help="Pretend it is this ISO instant")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Record, send nothing")] = False,
    queue: Annotated[bool, typer.Option("--queue", help="Hand the run to the workers")] = False,
    json_out: JsonFlag = False,
) -> None:
    """Run an automation now, here (or on the workers with --queue), and print the outcome."""
    rt = Runtime.load(now=now)
    engine = _engine(rt)
    if queue:
        run_id = request_run(engine, name, dry_run=dry_run, requested_by=CLI_ACTOR)
        TaskQueue.from_settings(rt.settings).enqueue_run(run_id)
        if json_out:
            rt.out({"run_id": run_id, "state": "queued"})
        else:
            rt.console.print(f"run {run_id} of {name} queued")
        return
    outcome = run_now(engine, name, dry_run=dry_run, requested_by=CLI_ACTOR)
    if json_out:
        rt.out(outcome.to_json())
        return
    rt.console.print(
        f"run {outcome.run_id} of {name}: [bold]{outcome.state.value}[/]"
        + (" (dry run)" if outcome.dry_run else "")
    )
    if outcome.error_message:
        rt.console.print(outcome.error_message, highlight=False)
    units = ", ".join(f"{unit} {n}" for unit, n in sorted(outcome.units.items())) or "none"
    rt.console.print(f"units: {units}; minutes saved: {outcome.minutes_saved:g}")
    effects = ", ".join(f"{state} {n}" for state, n in sorted(outcome.effects.items())) or "none"
    rt.console.print(f"effects: {effects}")


def worker(
    workers: Annotated[int | None, typer.Option("--workers", help="Threads or processes")] = None,
    processes: Annotated[bool, typer.Option("--processes", help="Processes, not threads")] = False,
    tick_s: Annotated[
        float, typer.Option("--tick-s", help="Seconds between ticks")
    ] = DEFAULT_TICK_S,
    queue_name: Annotated[
        str, typer.Option("--queue-name", help="huey queue name (one per deployment)")
    ] = DEFAULT_QUEUE_NAME,
) -> None:
    """Carry out runs and effects from the queue until stopped (Ctrl-C finishes work in hand)."""
    rt = Runtime.load()
    configure_logging(rt.settings.log_level)
    engine = _engine(rt)  # loads every automation first: tasks and handlers register on import
    queue = TaskQueue.from_settings(rt.settings, name=queue_name)
    serve(
        engine,
        queue,
        workers=workers or rt.settings.worker_threads,
        processes=processes,
        tick_s=tick_s,
        periodic=[*ehr_jobs(rt.settings, rt.db, rt.cipher, rt.clock), audit_index_job(rt.db)],
    )


@outbox_app.command("list")
def outbox_list(
    json_out: JsonFlag = False,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first")] = 50,
) -> None:
    """Messages the sandbox channel delivered, newest first (they hold PHI: mind your screen)."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        messages = list_outbox(
            session,
            rt.cipher,
            reader=Actor.user(getpass.getuser()),
            now=rt.clock.now(),
            limit=limit,
        )
    if json_out:
        rt.out([m.to_json() for m in messages])
        return
    table = Table("id", "sent", "channel", "to", "for", "key", "body")
    for m in messages:
        table.add_row(
            str(m.id),
            m.sent_at.isoformat(timespec="seconds"),
            m.channel,
            m.to,
            m.for_ref or "",
            m.effect_key,
            m.body,
        )
    rt.console.print(table)


standalone = typer.Typer(no_args_is_help=True, pretty_exceptions_enable=False)
standalone.add_typer(automations_app, name="automations")
standalone.add_typer(outbox_app, name="outbox")
standalone.command("run")(run)
standalone.command("worker")(worker)

if __name__ == "__main__":
    standalone()
