"""`clinicflow backup DIR` and `clinicflow restore DIR`: the database and its keys, together.

Two plain commands, registered at the top level by `cli.main`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn

from clinicflow.cli.runtime import Runtime
from clinicflow.security.backup import restore_backup, write_backup
from clinicflow.store.models import metadata


def _progress(rt: Runtime) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=rt.console,
        transient=True,
    )


def backup(
    directory: Annotated[Path, typer.Argument(help="A new or empty folder for the backup")],
) -> None:
    """Write the database, the PHI keys and the audit anchors to DIRECTORY."""
    rt = Runtime.load()
    with _progress(rt) as progress:
        task = progress.add_task("tables", total=len(metadata.sorted_tables))
        report = write_backup(
            rt.db,
            rt.settings,
            rt.clock,
            directory,
            on_progress=lambda *_: progress.advance(task),
        )
    for warning in report.warnings:
        rt.console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    rt.console.print(
        f"backed up {sum(report.rows.values())} rows from {len(report.rows)} tables to "
        f"{directory}. It holds the PHI key with the data: keep it on encrypted storage."
    )


def restore(
    directory: Annotated[Path, typer.Argument(help="A folder written by `clinicflow backup`")],
    accept_broken_audit: Annotated[
        bool,
        typer.Option(
            "--accept-broken-audit",
            help="Restore even if the backup's audit chain is broken (the break is recorded)",
        ),
    ] = False,
) -> None:
    """Load a backup into an empty database and put its keys in the data dir."""
    rt = Runtime.load()
    with _progress(rt) as progress:
        tasks: dict[str, TaskID] = {}

        def show(table: str, done: int, total: int) -> None:
            if table not in tasks:
                tasks[table] = progress.add_task(table, total=total)
            progress.update(tasks[table], completed=done)

        report = restore_backup(
            rt.db,
            rt.settings,
            rt.clock,
            directory,
            accept_broken_audit=accept_broken_audit,
            on_progress=show,
        )
    if report.audit.problem is not None:
        rt.console.print(
            "[yellow]warning:[/] restored with a broken audit chain: "
            f"{report.audit.problem.message}",
            highlight=False,
        )
    rt.console.print(
        f"restored {sum(report.rows.values())} rows into {len(report.rows)} tables and "
        f"{len(report.key_files)} key file(s); audit log verified to row {report.audit.head_seq}"
    )
