"""Signing in and out: password, then TOTP (or enrolment at the first sign-in), then a new session.

The password step opens a half session that reaches only the MFA pages; passing MFA ends it and
opens a fresh one (a new cookie value, so a session fixed before sign-in is worth nothing). The
sign-in form itself carries a CSRF token tied to a short-lived cookie (login CSRF).
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from clinicflow.security.accounts import (
    SignInRefused,
    check_password,
    check_second_factor,
    enrol_mfa,
    pending_totp_secret,
)
from clinicflow.security.passwords import hashing_for
from clinicflow.security.permissions import Permission
from clinicflow.security.sessions import end_session, open_session
from clinicflow.security.totp import provisioning_uri, qr_svg
from clinicflow.web.auth import (
    SESSION_COOKIE,
    Guard,
    Staff,
    client_address,
    kept_on,
    public,
    session_policy,
)
from clinicflow.web.health import State
from clinicflow.web.staff_ui import cipher_of, home_for, render

router = APIRouter()

SIGN_IN_CSRF_COOKIE = "cf_sign_in"
half_signed_in = Guard(Permission.ACCOUNT, mfa=False)
HalfStaff = Annotated[Staff, Depends(half_signed_in)]


def _secure(request: Request) -> bool:
    state = request.app.state.clinicflow
    return bool(state.settings.public_url.startswith("https://"))


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path="/",
    )


def safe_next(target: str | None) -> str:
    """Only a path on this site (never `//host` or a scheme): an open redirect leaks sessions."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


@router.get("/sign-in", response_class=HTMLResponse, dependencies=[Depends(public("sign-in form"))])
def sign_in_page(request: Request, next: str = "/") -> HTMLResponse:
    """The username and password form."""
    notice = (
        "You were signed out after a period of inactivity."
        if "idle" in request.query_params
        else None
    )
    return _sign_in_form(request, next=next, notice=notice)


def _sign_in_form(
    request: Request,
    *,
    next: str,
    username: str = "",
    status_code: int = 200,
    **context: str | None,
) -> HTMLResponse:
    """The sign-in form with a fresh CSRF token and the short-lived cookie it must match."""
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "staff/sign_in.html",
        title="Sign in",
        staff=None,
        status_code=status_code,
        csrf_token=token,
        next=safe_next(next),
        username=username,
        **context,
    )
    response.set_cookie(
        SIGN_IN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        max_age=3600,
        path="/sign-in",
    )
    return response


@router.post("/sign-in", response_model=None, dependencies=[Depends(public("sign-in form"))])
def sign_in(
    request: Request,
    state: State,
    username: Annotated[str, Form(max_length=200)],
    password: Annotated[str, Form(max_length=1024)],
    csrf_token: Annotated[str, Form(max_length=100)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the password (throttled); on success, on to the MFA step."""
    expected = request.cookies.get(SIGN_IN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(expected, csrf_token):
        return render(
            request,
            "staff/problem.html",
            title="Sign in",
            staff=None,
            status_code=403,
            heading="Please try again",
            message="The sign-in form had expired. Open the sign-in page again.",
        )
    now = state.clock.now()
    hashing = hashing_for(state.settings.password_hashing)
    try:
        with kept_on(state.db, SignInRefused) as session:
            user = check_password(
                session,
                hashing,
                username=username,
                password=password,
                address=client_address(request),
                now=now,
            )
            token = open_session(
                session,
                user,
                mfa_passed=False,
                address=client_address(request),
                user_agent=request.headers.get("user-agent", ""),
                policy=session_policy(state),
                now=now,
            )
    except SignInRefused as refused:
        response = _sign_in_form(
            request,
            next=next,
            username=username[:64],
            status_code=429 if refused.retry_after_s else 401,
            error=refused.message,
        )
        if refused.retry_after_s:
            response.headers["Retry-After"] = str(refused.retry_after_s)
        return response
    step = "/sign-in/mfa" if user.mfa_enrolled else "/mfa/enrol"
    onward = RedirectResponse(f"{step}?next={quote(safe_next(next), safe='')}", status_code=303)
    _set_session_cookie(request, onward, token)
    onward.delete_cookie(SIGN_IN_CSRF_COOKIE, path="/sign-in")
    return onward


@router.get("/sign-in/mfa", response_class=HTMLResponse)
def mfa_page(request: Request, staff: HalfStaff, next: str = "/") -> HTMLResponse:
    """The TOTP (or recovery code) step."""
    return render(
        request, "staff/mfa.html", title="Two-step check", staff=staff, next=safe_next(next)
    )


def _full_session(request: Request, state: State, staff: Staff, target: str) -> Response:
    """End the half session and open a full one: the cookie value changes at privilege change."""
    now = state.clock.now()
    assert staff.session is not None  # noqa: S101  (a session guard made `staff`)
    with state.db.transaction() as session:
        end_session(session, staff.session.token_digest, reason="mfa-passed", now=now)
        token = open_session(
            session,
            staff.user,
            mfa_passed=True,
            address=client_address(request),
            user_agent=request.headers.get("user-agent", ""),
            policy=session_policy(state),
            now=now,
        )
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(request, response, token)
    return response


@router.post("/sign-in/mfa", response_model=None)
def mfa_check(
    request: Request,
    state: State,
    staff: HalfStaff,
    code: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Check the code; on success, the full session and the page that was asked for."""
    try:
        with kept_on(state.db, SignInRefused) as session:
            check_second_factor(
                session,
                cipher_of(state),
                user_id=staff.user.id,
                code=code,
                address=client_address(request),
                now=state.clock.now(),
            )
    except SignInRefused as refused:
        return render(
            request,
            "staff/mfa.html",
            title="Two-step check",
            staff=staff,
            status_code=429 if refused.retry_after_s else 401,
            error=refused.message,
            next=safe_next(next),
        )
    target = safe_next(next)
    return _full_session(request, state, staff, target if target != "/" else home_for(staff))


@router.get("/mfa/enrol", response_class=HTMLResponse)
def enrol_page(request: Request, state: State, staff: HalfStaff) -> Response:
    """The QR code and key of a new TOTP secret (the same one on a reload until confirmed)."""
    if staff.user.mfa_enrolled:
        return RedirectResponse("/sign-in/mfa", status_code=303)
    return _enrol_form(request, state, staff)


def _enrol_form(
    request: Request, state: State, staff: Staff, *, error: str | None = None
) -> Response:
    with state.db.transaction() as session:
        secret = pending_totp_secret(session, cipher_of(state), user_id=staff.user.id)
    uri = provisioning_uri(
        secret, username=staff.user.username, issuer=f"clinicflow ({state.settings.practice_name})"
    )
    return render(
        request,
        "staff/mfa_enrol.html",
        title="Set up MFA",
        staff=staff,
        secret=secret,
        qr_svg=qr_svg(uri),
        error=error,
        status_code=401 if error else 200,
    )


@router.post("/mfa/enrol", response_model=None)
def enrol(
    request: Request, state: State, staff: HalfStaff, code: Annotated[str, Form(max_length=64)]
) -> Response:
    """Confirm the secret with a code; show the recovery codes once; the session becomes full."""
    try:
        with kept_on(state.db, SignInRefused) as session:
            codes = enrol_mfa(
                session,
                cipher_of(state),
                user_id=staff.user.id,
                code=code,
                address=client_address(request),
                now=state.clock.now(),
            )
    except SignInRefused as refused:
        return _enrol_form(request, state, staff, error=refused.message)
    full = _full_session(request, state, staff, home_for(staff))
    page = render(
        request,
        "staff/recovery_codes.html",
        title="Recovery codes",
        staff=None,
        codes=codes,
        next=home_for(staff),
    )
    cookie = full.headers.get("set-cookie")
    if cookie:
        page.headers.append("set-cookie", cookie)
    return page


@router.post("/sign-out", response_model=None)
def sign_out(state: State, staff: HalfStaff) -> Response:
    """End the session (the cookie is cleared too)."""
    assert staff.session is not None  # noqa: S101
    with state.db.transaction() as session:
        end_session(session, staff.session.token_digest, reason="sign-out", now=state.clock.now())
    response = RedirectResponse("/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/session/keepalive", response_model=None)
def keepalive(_staff: HalfStaff) -> Response:
    """Activity on a page (typing a note) keeps the session alive; the guard touched it."""
    return Response(status_code=204)
