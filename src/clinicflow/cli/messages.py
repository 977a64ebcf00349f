"""`clinicflow messages pause|resume|status`: the practice-wide switch for patient messages."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer

from clinicflow.channels.pause import messages_pause, set_messages_paused
from clinicflow.cli.runtime import Runtime
from clinicflow.security.audit import Actor

app = typer.Typer(help="Pause or resume every message to patients (reminders, replies).")


def _actor() -> Actor:
    return Actor.user(getpass.getuser() or "cli")


@app.command("pause")
def pause(
    reason: Annotated[str, typer.Option("--reason", help="Why, shown to staff")] = "",
) -> None:
    """Hold every patient message until `messages resume` (nothing is lost or sent twice)."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        set_messages_paused(
            session, paused=True, actor=_actor(), now=rt.clock.now(), reason=reason or None
        )
    rt.console.print("Patient messages are paused. Held messages go out after `messages resume`.")


@app.command("resume")
def resume() -> None:
    """Let patient messages flow again; held ones go out if they still make sense."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        set_messages_paused(session, paused=False, actor=_actor(), now=rt.clock.now())
    rt.console.print("Patient messages resumed.")


@app.command("status")
def status(
    json_out: Annotated[bool, typer.Option("--json", help="Plain JSON on stdout")] = False,
) -> None:
    """Whether patient messages are paused, by whom and why."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        held = messages_pause(session)
    if json_out:
        rt.out(
            {
                "paused": held is not None,
                **({"by": held.by, "since": held.since, "reason": held.reason} if held else {}),
            }
        )
        return
    if held is None:
        rt.console.print("Patient messages flow normally.")
    else:
        why = f": {held.reason}" if held.reason else ""
        rt.console.print(
            f"Patient messages are paused since {held.since} by {held.by}{why}.", markup=False
        )
