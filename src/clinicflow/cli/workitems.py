"""`clinicflow work-items list`: the review queue on the command line (until the web app has it)."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from rich.table import Table

from clinicflow.cli.runtime import Runtime
from clinicflow.clock import local_text
from clinicflow.engine import list_open

app = typer.Typer(help="Work items waiting for a person (the review queue).", no_args_is_help=True)


@app.command("list")
def list_command(
    pool: Annotated[str | None, typer.Option(help="Only this pool, e.g. scheduler")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print plain JSON on stdout")] = False,
) -> None:
    """Open work items, most pressing first (they may hold PHI: the read is audited)."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        items = list_open(
            session, rt.cipher, reader=getpass.getuser(), now=rt.clock.now(), pool=pool
        )
    if json_output:
        rt.out(
            [
                {
                    "id": i.id,
                    "pool": i.pool,
                    "priority": str(i.priority),
                    "status": str(i.status),
                    "due_at": i.due_at.isoformat() if i.due_at else None,
                    "focus": i.focus,
                    "description": i.description,
                }
                for i in items
            ]
        )
        return
    table = Table("id", "pool", "priority", "due", "what")
    for i in items:
        due = local_text(i.due_at, rt.settings.timezone) if i.due_at else ""
        table.add_row(str(i.id), i.pool, str(i.priority), due, i.description)
    rt.console.print(table if items else "No open work items.")
