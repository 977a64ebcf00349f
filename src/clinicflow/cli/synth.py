"""`clinicflow synth`: write a synthetic multi-specialty practice as FHIR R4 NDJSON."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from clinicflow.clock import SystemClock
from clinicflow.settings import Settings
from clinicflow.synth import write_practice

# Below this many patients the run takes a few seconds and a progress bar would only flicker.
PROGRESS_FROM_PATIENTS = 10_000


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise typer.BadParameter(
            f"{name!r} is not an IANA time zone; use a name like America/Chicago",
            param_hint="--timezone",
        ) from exc


def _anchor(text: str | None, zone: ZoneInfo) -> date:
    if text is None:
        return SystemClock().now().astimezone(zone).date()
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r} is not a date; write it like 2026-11-23", param_hint="--anchor-date"
        ) from exc


def _closed_day_note(anchor_on: date) -> str | None:
    """A hint when today or tomorrow falls on a weekend, when the practice has no schedule."""
    names = {0: "today", 1: "tomorrow"}
    closed = [
        names[n] for n in (0, 1) if date.fromordinal(anchor_on.toordinal() + n).weekday() >= 5
    ]
    if not closed:
        return None
    return (
        f"The practice sees patients on weekdays only, so {' and '.join(closed)} "
        "will have no appointments; pass --anchor-date with a weekday to see a full schedule."
    )


def _print_summary(console: Console, out: Path, counts: dict[str, int]) -> None:
    table = Table(title=f"Synthetic practice in {out}", title_justify="left")
    table.add_column("Resource type")
    table.add_column("Resources", justify="right")
    for resource_type, count in counts.items():
        table.add_row(f"{resource_type}.ndjson", f"{count:,}")
    console.print(table)


def synth(
    out: Annotated[
        Path, typer.Option("--out", help="Folder for the NDJSON files", file_okay=False)
    ],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same bytes")] = 7,
    patients: Annotated[int, typer.Option(min=1, help="How many patients")] = 2000,
    anchor_date: Annotated[
        str | None,
        typer.Option(
            "--anchor-date",
            help="The day the data treats as today (YYYY-MM-DD) [default: today in the zone]",
            show_default=False,
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            help="The practice's IANA time zone [default: CLINICFLOW_TIMEZONE]", show_default=False
        ),
    ] = None,
) -> None:
    """Write a deterministic synthetic practice (patients, schedules, visits, messages)."""
    console = Console(stderr=True)
    zone_name = timezone or Settings().timezone
    anchor_on = _anchor(anchor_date, _zone(zone_name))
    clock = SystemClock()
    started = clock.monotonic()
    with Progress(
        TextColumn("[bold]synth[/] {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=patients < PROGRESS_FROM_PATIENTS,
    ) as progress:
        task = progress.add_task("planning", total=None)

        def show(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total or None)

        counts = write_practice(
            out, seed=seed, patients=patients, anchor_on=anchor_on, timezone=zone_name,
            on_progress=show,
        )  # fmt: skip
    elapsed_s = clock.monotonic() - started
    _print_summary(console, out, counts)
    console.print(
        f"seed {seed}, {patients:,} patients, today is {anchor_on.isoformat()} in {zone_name}: "
        f"{sum(counts.values()):,} resources in {elapsed_s:.1f} s",
        highlight=False,
    )
    note = _closed_day_note(anchor_on)
    if note:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
