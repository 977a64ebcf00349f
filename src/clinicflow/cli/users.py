"""`clinicflow users add|list|reset-mfa|disable|alert-phone|demo-code`: staff accounts.

The first admin is made here; after that, people are added here too (MFA is set up by each user
at their first sign-in, in the browser).
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from rich.table import Table
from sqlalchemy import select

from clinicflow.cli.runtime import Runtime
from clinicflow.errors import InputError
from clinicflow.security.accounts import create_user, disable_user, reset_mfa, set_alert_phone
from clinicflow.security.passwords import hashing_for
from clinicflow.security.permissions import parse_role
from clinicflow.store.staff import StaffUser
from clinicflow.synth.staff import demo_code

app = typer.Typer(
    help="Staff accounts: add people, reset a lost MFA phone, disable.", no_args_is_help=True
)


def _operator() -> str:
    return getpass.getuser() or "cli"


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Password (12 characters or more): ")
    if getpass.getpass("Same password again: ") != first:
        raise InputError("The two passwords differ; nothing was changed.", code="user.password")
    return first


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Sign-in name, e.g. dana.front")],
    role: Annotated[str, typer.Option("--role", help="front-desk, nurse, admin, ...")],
    name: Annotated[str, typer.Option("--name", help="Full name shown in the app")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input")
    ] = False,
) -> None:
    """Add a person; they set up MFA at their first sign-in."""
    rt = Runtime.load()
    chosen = parse_role(role)
    password = _read_password(password_stdin)
    with rt.db.transaction() as session:
        user = create_user(
            session,
            hashing_for(rt.settings.password_hashing),
            username=username,
            display_name=name or username,
            role=chosen,
            password=password,
            now=rt.clock.now(),
            created_by=_operator(),
            context=[rt.settings.practice_name],
        )
    rt.console.print(
        f"added {user.username} ({user.role}); at the first sign-in they set up MFA "
        f"with an authenticator app at {rt.settings.public_url}/sign-in"
    )


@app.command("list")
def list_users(
    json_out: Annotated[bool, typer.Option("--json", help="Plain JSON on stdout")] = False,
) -> None:
    """Every account with its role and whether MFA is set up."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        rows = list(session.scalars(select(StaffUser).order_by(StaffUser.username)))
    people = [
        {
            "username": r.username,
            "name": r.display_name,
            "role": r.role,
            "mfa": r.mfa_enrolled_at is not None,
            "disabled": r.disabled_at is not None,
        }
        for r in rows
    ]
    if json_out:
        rt.out(people)
        return
    table = Table("username", "name", "role", "MFA", "disabled")
    for p in people:
        table.add_row(
            str(p["username"]),
            str(p["name"]),
            str(p["role"]),
            "yes" if p["mfa"] else "not yet",
            "yes" if p["disabled"] else "",
        )
    rt.console.print(table)


@app.command("reset-mfa")
def reset(username: Annotated[str, typer.Argument(help="Whose phone was lost")]) -> None:
    """Forget someone's MFA; they set it up again at their next sign-in."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        user = reset_mfa(session, username=username, by=_operator(), now=rt.clock.now())
    rt.console.print(f"MFA reset for {user.username}; they set it up again at the next sign-in")


@app.command("disable")
def disable(username: Annotated[str, typer.Argument(help="Who leaves the practice")]) -> None:
    """Disable an account: its sessions and tokens stop working at once."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        disable_user(session, username=username, by=_operator(), now=rt.clock.now())
    rt.console.print(f"disabled {username}")


@app.command("alert-phone")
def alert_phone(
    username: Annotated[str, typer.Argument(help="A nurse or clinician on the on-call rota")],
    phone: Annotated[
        str | None, typer.Argument(help="Mobile number, e.g. +15555550123; leave out to clear")
    ] = None,
) -> None:
    """Where urgent-message alerts reach someone when on call (a text with no PHI)."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        user = set_alert_phone(
            session, username=username, phone=phone, by=_operator(), now=rt.clock.now()
        )
    what = f"urgent alerts go to {phone}" if phone else "no alert phone: the on-screen alarm only"
    rt.console.print(f"{user.username}: {what}", highlight=False)


@app.command("demo-code")
def show_demo_code(username: Annotated[str, typer.Argument(help="A demo user")]) -> None:
    """The current MFA code of a demo user (the demo's own accounts only)."""
    rt = Runtime.load()
    with rt.db.transaction() as session:
        code = demo_code(session, rt.cipher, username, now=rt.clock.now())
    if code is None:
        raise InputError(
            f"{username!r} is not a demo user; real users read their code from "
            "their authenticator app.",
            code="user.not_demo",
        )
    sys.stdout.write(code + "\n")
