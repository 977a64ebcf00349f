"""`clinicflow audit ...`: check the tamper-evident audit log and anchor its head."""

from __future__ import annotations

from typing import Annotated

import typer

from clinicflow.cli.runtime import Runtime
from clinicflow.security.audit import (
    anchor_dir_for,
    read_anchors,
    write_head_anchor,
)
from clinicflow.security.audit_verify import verify_database

app = typer.Typer(help="Check the tamper-evident audit log.", no_args_is_help=True)

EXIT_INTACT, EXIT_BROKEN = 0, 1


@app.command("verify")
def verify_command(
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Re-hash every audit row and compare with the daily head anchors; exit 1 if broken."""
    rt = Runtime.load()
    anchors = read_anchors(anchor_dir_for(rt.settings.data_dir))
    with rt.console.status("verifying the audit log"):
        result = verify_database(rt.db, anchors)
    if json_output:
        rt.out(result.as_dict())
    elif result.problem is None:
        rt.console.print(
            f"audit log intact: {result.rows_checked} rows and "
            f"{result.anchors_checked} head anchors checked"
        )
    else:
        rt.console.print(
            f"[bold red]audit log broken ({result.problem.kind}) at row {result.problem.seq}:[/] "
            f"{result.problem.message}",
            highlight=False,
        )
    raise typer.Exit(EXIT_INTACT if result.ok else EXIT_BROKEN)


@app.command("anchor")
def anchor_command() -> None:
    """Save the chain's head outside the database now (the engine also does this daily)."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        path = write_head_anchor(session, anchor_dir_for(rt.settings.data_dir), rt.clock.now())
    rt.console.print(f"audit head saved to {path}")
