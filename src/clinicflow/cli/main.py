"""The `clinicflow` command: a thin face over the services; each error is one line to act on."""

from __future__ import annotations

import logging
import os
import secrets
import sys
import traceback
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console
from sqlalchemy.exc import OperationalError, ProgrammingError

# typer 0.29 vendors its own click: usage errors are raised as its ClickException, not click's.
from typer._click.exceptions import ClickException

from clinicflow.cli import (
    audit,
    backup,
    db,
    demo,
    ehr,
    engine,
    impact,
    messages,
    noshow,
    phi,
    reminders,
    serve,
    status,
    sync,
    triage,
    users,
    workitems,
)
from clinicflow.cli.synth import synth
from clinicflow.errors import ClinicflowError
from clinicflow.logs import configure_logging

app = typer.Typer(
    name="clinicflow",
    help="clinicflow: automations that take repetitive administrative work off medical practices.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(db.app, name="db")
app.add_typer(sync.app, name="sync")
app.add_typer(ehr.app, name="ehr")
app.command("status")(status.status)
app.command("synth")(synth)
app.add_typer(audit.app, name="audit")
app.add_typer(phi.app, name="phi")
app.command("backup")(backup.backup)
app.command("restore")(backup.restore)
app.add_typer(engine.automations_app, name="automations")
app.add_typer(engine.outbox_app, name="outbox")
app.add_typer(workitems.app, name="work-items")
app.add_typer(reminders.app, name="reminders")
app.add_typer(messages.app, name="messages")
app.add_typer(users.app, name="users")
app.add_typer(noshow.app, name="noshow")
app.add_typer(impact.app, name="impact")
app.add_typer(triage.app, name="triage")
app.command("run")(engine.run)
app.command("worker")(engine.worker)
app.command("serve")(serve.serve)
app.command("demo")(demo.demo)


@app.callback()
def global_options(
    config: Annotated[
        Path | None, typer.Option("--config", help="TOML settings file", envvar="CLINICFLOW_CONFIG")
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors")] = False,
) -> None:
    """Options that apply to every command."""
    if config is not None:
        os.environ["CLINICFLOW_CONFIG"] = str(config)
    configure_logging("DEBUG" if debug else os.environ.get("CLINICFLOW_LOG_LEVEL", "WARNING"))


def main() -> None:
    """Run the command; print a ClinicflowError's message, and a traceback only with --debug."""
    debug = "--debug" in sys.argv
    err = Console(stderr=True, soft_wrap=True)  # one error, one line, however narrow
    try:
        result = app(standalone_mode=False)
    except ClinicflowError as exc:
        if debug:
            traceback.print_exc()
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        sys.exit(2)
    except (OperationalError, ProgrammingError) as exc:
        if debug:
            traceback.print_exc()
        if _is_missing_table(exc):
            err.print(
                "[bold red]error:[/] the database is not set up: run `clinicflow db upgrade`."
            )
        else:
            _report_unexpected(err, exc)
        sys.exit(2)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (ClickException, click.ClickException) as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except Exception as exc:  # noqa: BLE001  (the outermost boundary: log with a reference, exit)
        if debug:
            traceback.print_exc()
        _report_unexpected(err, exc)
        sys.exit(2)
    sys.exit(result if isinstance(result, int) else 0)


def _is_missing_table(exc: Exception) -> bool:
    text = str(exc)
    return "no such table" in text or ("relation" in text and "does not exist" in text)


def _report_unexpected(err: Console, exc: Exception) -> None:
    """One line for the person, the details in the log under the same reference."""
    ref = f"R-{secrets.token_hex(2)}"
    logging.getLogger(__name__).error(
        "unexpected error", exc_info=exc, extra={"ref": ref, "error_type": type(exc).__name__}
    )
    err.print(
        f"[bold red]error:[/] something went wrong on our side (ref {ref}); "
        "run again with --debug for details."
    )


if __name__ == "__main__":
    main()
