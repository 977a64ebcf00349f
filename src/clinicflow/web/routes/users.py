"""The Users page (admin): add people, reset a lost phone's MFA, disable a leaver."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select

from clinicflow.errors import InputError
from clinicflow.security.accounts import create_user, disable_user, reset_mfa
from clinicflow.security.passwords import hashing_for
from clinicflow.security.permissions import Permission, Role, parse_role
from clinicflow.store.staff import StaffUser
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.staff_ui import render

router = APIRouter()
Admin = Annotated[Staff, Depends(require(Permission.USERS_MANAGE))]


def _page(
    request: Request,
    state: State,
    staff: Staff,
    *,
    error: str | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with state.db.read() as session:
        people = list(session.scalars(select(StaffUser).order_by(StaffUser.username)))
    return render(
        request,
        "staff/users.html",
        title="Users",
        staff=staff,
        people=people,
        roles=[r.value for r in Role],
        error=error,
        notice=notice,
        status_code=status_code,
    )


@router.get("/users", response_class=HTMLResponse)
def users_page(request: Request, state: State, staff: Admin) -> HTMLResponse:
    """Everyone who can sign in, with role, MFA and status."""
    return _page(request, state, staff)


@router.post("/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    state: State,
    staff: Admin,
    username: Annotated[str, Form(max_length=64)],
    display_name: Annotated[str, Form(max_length=128)],
    role: Annotated[str, Form(max_length=32)],
    password: Annotated[str, Form(max_length=1024)],
) -> HTMLResponse:
    """Add a person with a first password (they set up MFA at their first sign-in)."""
    try:
        with state.db.transaction() as session:
            user = create_user(
                session,
                hashing_for(state.settings.password_hashing),
                username=username,
                display_name=display_name,
                role=parse_role(role),
                password=password,
                now=staff.seen_at,
                created_by=staff.user.username,
                context=[state.settings.practice_name],
            )
    except InputError as exc:
        return _page(request, state, staff, error=exc.message, status_code=422)
    return _page(
        request,
        state,
        staff,
        notice=f"Added {user.username}. Give them the password "
        "in person; they set up MFA at their first sign-in.",
    )


@router.post("/users/{username}/reset-mfa", response_model=None)
def reset(request: Request, state: State, staff: Admin, username: str) -> Response:
    """Forget the user's MFA: they enrol again at their next sign-in."""
    try:
        with state.db.transaction() as session:
            reset_mfa(session, username=username, by=staff.user.username, now=staff.seen_at)
    except InputError as exc:
        return _page(request, state, staff, error=exc.message, status_code=404)
    return RedirectResponse("/users", status_code=303)


@router.post("/users/{username}/disable", response_model=None)
def disable(request: Request, state: State, staff: Admin, username: str) -> Response:
    """Disable the account: its sessions and tokens stop working at once."""
    if username == staff.user.username:
        return _page(
            request,
            state,
            staff,
            status_code=422,
            error="You cannot disable your own account; ask another administrator.",
        )
    try:
        with state.db.transaction() as session:
            disable_user(session, username=username, by=staff.user.username, now=staff.seen_at)
    except InputError as exc:
        return _page(request, state, staff, error=exc.message, status_code=404)
    return RedirectResponse("/users", status_code=303)
