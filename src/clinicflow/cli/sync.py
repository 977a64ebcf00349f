"""`clinicflow sync folder DIR` and `sync fhir`: bring FHIR data into the replica."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from clinicflow.cli.runtime import Runtime
from clinicflow.clock import parse_instant
from clinicflow.ehr import count_items, sync_folder
from clinicflow.ehr.bulk_export import ExportLevel
from clinicflow.ehr.fhir_client import client_from_settings
from clinicflow.ehr.fhir_sync import FhirSyncReport, SyncMode, check_level, sync_fhir
from clinicflow.ehr.ingest import DEFAULT_BATCH_SIZE, IngestReport

app = typer.Typer(help="Bring data from the EHR into clinicflow's replica.", no_args_is_help=True)

EXIT_ALL_STORED, EXIT_SOME_REJECTED = 0, 1


@app.command("folder")
def folder(
    directory: Annotated[Path, typer.Argument(help="Folder of NDJSON files, Bundles or resources")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    batch_size: Annotated[int, typer.Option(help="Resources per transaction")] = DEFAULT_BATCH_SIZE,
) -> None:
    """Ingest a folder as Synthea and Bulk Data exports write it; exit 1 if any was rejected."""
    rt = Runtime.load()
    report = sync_with_progress(rt, directory, batch_size=batch_size)
    print_rejections(rt, report)
    if json_output:
        rt.out(report_as_dict(report))
    else:
        rt.console.print(
            f"stored {report.stored} resources ({report.created} new, {report.updated} updated, "
            f"{report.unchanged} unchanged), {len(report.rejected)} rejected, "
            f"{report.events} events, {report.unresolved_references} unresolved references"
        )
    raise typer.Exit(EXIT_SOME_REJECTED if report.rejected else EXIT_ALL_STORED)


def sync_with_progress(
    rt: Runtime, directory: Path, *, batch_size: int = DEFAULT_BATCH_SIZE
) -> IngestReport:
    """Sync a folder with a progress bar on stderr (shown from 5,000 resources up)."""
    total = count_items(directory)
    with Progress(
        TextColumn("[bold]sync"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=rt.console,
        transient=True,
        disable=total < 5000,
    ) as progress:
        task = progress.add_task("sync", total=total)
        return sync_folder(
            rt.db,
            rt.cipher,
            rt.clock,
            directory,
            batch_size=batch_size,
            on_progress=lambda n: progress.advance(task, n),
        )


def print_rejections(rt: Runtime, report: IngestReport) -> None:
    """Each rejected resource as `WHERE: reason` on stderr, one line each, never wrapped."""
    for rejection in report.rejected:
        rt.console.print(f"{rejection.where}: {rejection.reason}", markup=False, highlight=False)


def report_as_dict(report: IngestReport) -> dict[str, object]:
    """The summary of an ingest as plain data."""
    return {
        **report.counts(),
        "rejected": [{"where": r.where, "reason": r.reason} for r in report.rejected],
        "unresolved_references": report.unresolved_references,
        "by_type": dict(sorted(report.by_type.items())),
    }


@app.command("fhir")
def fhir(
    mode: Annotated[SyncMode, typer.Option(help="bulk ($export), search, or auto")] = SyncMode.AUTO,
    since: Annotated[
        str | None, typer.Option(help="Only what changed after this instant (ISO 8601)")
    ] = None,
    level: Annotated[
        ExportLevel,
        typer.Option(
            help="system (everything), patient (every patient's records) or group (one Group's "
            "patients); patient and group use bulk export"
        ),
    ] = ExportLevel.SYSTEM,
    group: Annotated[
        str | None, typer.Option(help="The id of the Group in the EHR (with --level group)")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Bring the replica up to date from the EHR (CLINICFLOW_FHIR_BASE_URL); exit 1 on rejects."""
    check_level(mode, level, group)  # before anything is opened: a wrong option is said at once
    rt = Runtime.load()
    since_at = parse_instant(since) if since else None
    with (
        client_from_settings(rt.settings) as client,
        Progress(
            TextColumn("[bold]sync fhir"),
            TextColumn("{task.fields[status]}"),
            MofNCompleteColumn(),
            console=rt.console,
            transient=True,
        ) as progress,
    ):
        task = progress.add_task("sync", total=None, status="")
        result = sync_fhir(
            rt.db,
            rt.cipher,
            rt.clock,
            client,
            mode=mode,
            since=since_at,
            level=level,
            group_id=group,
            on_progress=lambda n: progress.advance(task, n),
            on_status=lambda s: progress.update(task, status=f"export {s}"),
        )
    report = result.ingest
    print_rejections(rt, report)
    for message in result.export_errors:
        rt.console.print(f"export error: {message}", markup=False, highlight=False)
    if json_output:
        rt.out(
            {
                **report_as_dict(report),
                "mode": str(result.mode),
                "level": str(result.level),
                "group": result.group_id,
                "since": result.since.isoformat() if result.since else None,
                "high_water": result.high_water.isoformat() if result.high_water else None,
                "export_errors": result.export_errors,
            }
        )
    else:
        rt.console.print(
            f"{result.mode} sync{_covering(result)}: stored {report.stored} resources "
            f"({report.created} new, {report.updated} updated, {report.unchanged} unchanged), "
            f"{len(report.rejected)} rejected, {report.events} events"
        )
    raise typer.Exit(EXIT_SOME_REJECTED if report.rejected else EXIT_ALL_STORED)


def _covering(result: FhirSyncReport) -> str:
    """What a partial sync covered, in words ("" for the whole server)."""
    if result.level is ExportLevel.GROUP:
        return f" of Group {result.group_id}'s patients"
    return " of every patient's records" if result.level is ExportLevel.PATIENT else ""
