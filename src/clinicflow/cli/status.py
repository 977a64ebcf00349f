"""`clinicflow status`: what the replica holds and what the engine is doing, at a glance."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from clinicflow.automations.reminders.stats import confirmation_rates
from clinicflow.automations.waitlist.stats import backfill_stats
from clinicflow.cli.runtime import Runtime
from clinicflow.ehr.writeback import count_local_changes
from clinicflow.engine.periodic import job_states
from clinicflow.store.summary import ehr_sync_state, summarize


def status(
    json_output: Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout")] = False,
) -> None:
    """Counts of resources, pending events, open work items, effects and runs."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        summary = summarize(session)
        summary["ehr_sync"] = ehr_sync_state(session, rt.clock.now())
        summary["jobs"] = job_states(session)
        zone = ZoneInfo(rt.settings.timezone)
        rates = confirmation_rates(session, rt.cipher, zone=zone, now=rt.clock.now())
        summary["reminders"] = rates.to_json()
        backfill = backfill_stats(session, now=rt.clock.now())
        summary["waitlist"] = backfill.to_json()
        local_changes = count_local_changes(session)
    if json_output:
        rt.out(summary)
        return
    table = Table(title="clinicflow status", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    for rtype, n in summary["resources"].items():
        table.add_row(f"resources · {rtype}", str(n))
    table.add_row("events pending dispatch", str(summary["events"]["pending"]))
    table.add_row("work items open", str(summary["work_items"]["open"]))
    for state, n in summary["effects"].items():
        table.add_row(f"effects · {state}", str(n))
    for state, n in summary["runs"].items():
        table.add_row(f"runs · {state}", str(n))
    rt.console.print(table)
    for base, synced in summary["ehr_sync"].items():
        lag = synced["lag_s"]
        rt.console.print(
            f"EHR {base}: current as of {synced['current_as_of']}"
            + (f" ({lag // 60} min ago)" if lag is not None else ""),
            markup=False,
            highlight=False,
        )
    for name, job in summary["jobs"].items():
        line = f"job {name}: last success {job['last_success_at'] or 'never'}"
        if job["running"]:
            line += ", running now"
        if job["last_error"]:
            line += f"; last attempt ({job['last_started_at']}) failed: {job['last_error']}"
        rt.console.print(line, markup=False, highlight=False)
    for title, rows in (("day", rates.by_day), ("provider", rates.by_provider)):
        for rate in rows:
            rt.console.print(
                f"reminders confirmed by {title} · {rate.label}: "
                f"{rate.confirmed} of {rate.reminded} ({rate.confirmed / rate.reminded:.0%})",
                markup=False,
                highlight=False,
            )
    if backfill.freed:
        rt.console.print(
            f"waitlist, last {backfill.days} days: {backfill.freed} slot(s) freed, "
            f"{backfill.offered} offered, {backfill.booked} booked"
            + (f" (median {backfill.median_fill_min:g} min to fill)" if backfill.booked else "")
            + f", {backfill.unfilled} left to the front desk, {backfill.open} still open; "
            f"revenue recovered ${backfill.revenue_cents / 100:,.2f}",
            markup=False,
            highlight=False,
        )
    if local_changes:
        rt.console.print(
            f"{local_changes} change(s) made by automations are kept locally (no EHR connected)."
        )
    for key, value in rt.settings.describe().items():
        rt.console.print(f"{key}: {value}", highlight=False)
