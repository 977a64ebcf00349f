"""`clinicflow db ...`: create and upgrade the database schema."""

from __future__ import annotations

import typer

from clinicflow.cli.runtime import Runtime
from clinicflow.store import check_reachable
from clinicflow.store.schema import create_schema, current_revision, head_revision

app = typer.Typer(help="Set up and upgrade the database.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_command() -> None:
    """Apply every migration this version knows (safe to run again)."""
    rt = Runtime.load()
    check_reachable(rt.db.engine)
    before = current_revision(rt.db.engine)
    create_schema(rt.db.engine)
    after = current_revision(rt.db.engine)
    where = rt.settings.describe()["database"]
    if before == after:
        rt.console.print(f"database ({where}) already at revision {after}")
    else:
        rt.console.print(f"database ({where}) upgraded from {before or 'empty'} to {after}")


@app.command("revision")
def revision_command() -> None:
    """Print the database's revision and the newest this code knows."""
    rt = Runtime.load()
    rt.out({"current": current_revision(rt.db.engine), "head": head_revision(rt.db.engine)})
