"""`clinicflow phi ...`: the keys that encrypt PHI at rest."""

from __future__ import annotations

import base64
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from clinicflow.cli.runtime import Runtime
from clinicflow.security.phi import keyring_from_settings
from clinicflow.security.rotation import RotationProgress, RotationReport, rotate_key

app = typer.Typer(help="Manage the keys that encrypt PHI at rest.", no_args_is_help=True)

EXIT_DONE, EXIT_INCOMPLETE = 0, 1


@app.command("rotate-key")
def rotate_key_command(
    batch_size: Annotated[int, typer.Option(help="Rows re-encrypted per transaction")] = 500,
) -> None:
    """Re-encrypt all PHI under a new key, then drop the old one; safe to interrupt and rerun."""
    rt = Runtime.load()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=rt.console,
    ) as progress:
        tasks: dict[str, TaskID] = {}

        def show(step: RotationProgress) -> None:
            # The first step comes once the key file holds the new key.
            if not tasks and rt.settings.phi_key is None:
                rt.console.print(
                    "The new key is in place: restart the web app and workers now, so that they "
                    "encrypt with it."
                )
            if step.column not in tasks:
                tasks[step.column] = progress.add_task(step.column, total=step.total)
            progress.update(tasks[step.column], completed=step.done, total=step.total)

        report = rotate_key(rt.db, rt.settings, rt.clock, batch_size=batch_size, on_progress=show)
    _print_report(rt, report)
    raise typer.Exit(EXIT_DONE if report.complete else EXIT_INCOMPLETE)


def _print_report(rt: Runtime, report: RotationReport) -> None:
    done = sum(report.reencrypted.values())
    how = "new key" if report.generated_key else "key from an earlier, interrupted run"
    if report.key_source == "settings":
        how = "key from CLINICFLOW_PHI_KEY"
    rt.console.print(f"re-encrypted {done} values with the {how} ({report.key_id})")
    for column, ids in report.unreadable.items():
        rt.console.print(
            f"[bold red]{column}:[/] rows {', '.join(ids)} could not be decrypted (altered, or "
            "on a key no longer held); the old keys are kept until they are dealt with.",
            highlight=False,
        )
    if report.old_keys_dropped:
        rt.console.print("no row uses the old key any more: it was removed from the key file")
    elif report.key_source == "settings" and report.complete:
        rt.console.print(
            "no row uses the old key any more: remove CLINICFLOW_PHI_PREVIOUS_KEYS and restart"
        )
    elif not report.unreadable:
        rt.console.print("some rows still use an old key: run `clinicflow phi rotate-key` again")


@app.command("index-key")
def index_key_command() -> None:
    """Print the blind-index key (base64), to pin it as CLINICFLOW_PHI_INDEX_KEY before rotating."""
    rt = Runtime.load()
    ring = keyring_from_settings(rt.settings, create=False)
    rt.out({"CLINICFLOW_PHI_INDEX_KEY": base64.b64encode(ring.index_key).decode()})
