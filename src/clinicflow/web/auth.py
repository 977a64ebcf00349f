"""Who is asking, and may they: the permission guard every route declares.

Each route names its permission with `Depends(require(Permission.X))`, or says why it is open with
`Depends(public("reason"))`; a test walks every route and fails on one that does neither. A guard:

- finds the caller from the session cookie (pages) or a `Bearer cfpat_...` token (the API);
- sends a browser without a session to the sign-in page, and one that has not passed MFA to the
  MFA step (such a half-signed-in session reaches nothing else);
- refuses a role without the permission (403, audited as a denial);
- checks the CSRF token on every state-changing request made with the cookie (form field
  `csrf_token` or header `X-CSRF-Token`); token calls carry no cookie and need none.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from clinicflow.security.accounts import StaffIdentity
from clinicflow.security.audit import Actor, record_access
from clinicflow.security.permissions import ROLE_PERMISSIONS, Permission
from clinicflow.security.sessions import (
    ActiveSession,
    SessionPolicy,
    apply_session_check,
    check_session,
)
from clinicflow.security.tokens import token_grant, touch_token
from clinicflow.store import Database
from clinicflow.web.state import AppState

__all__ = [
    "SESSION_COOKIE",
    "Guard",
    "SignInNeeded",
    "Staff",
    "client_address",
    "kept_on",
    "public",
    "require",
    "session_policy",
]

SESSION_COOKIE = "cf_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@contextmanager
def kept_on(db: Database, *kinds: type[BaseException]) -> Iterator[Session]:
    """A transaction that commits even when one of `kinds` is raised in it, then re-raises it.

    A refusal is an answer, not a failure: the failed attempt that throttling counts, the audit
    row of a denial and the end of an idle session must be kept when the request is refused.
    """
    held: BaseException | None = None
    with db.transaction() as session:
        try:
            yield session
        except kinds as exc:
            held = exc
    if held is not None:
        raise held


class SignInNeeded(Exception):  # noqa: N818  (control flow, not an error: the app redirects)
    """No usable session: the app answers with a redirect to `location` (or 401 for the API)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


@dataclass(frozen=True, slots=True)
class Staff:
    """The signed-in caller of one request."""

    user: StaffIdentity
    permissions: frozenset[Permission]
    address: str
    csrf_token: str | None  # None for token (API) callers
    session: ActiveSession | None
    via: str  # session | token
    seen_at: datetime  # the request's instant, from the app's clock

    @property
    def actor(self) -> Actor:
        return Actor.user(self.user.username)

    def may(self, permission: Permission) -> bool:
        return permission in self.permissions


def client_address(request: Request) -> str:
    """The caller's address as the server saw it (a proxy in front sets the forwarded headers)."""
    return request.client.host if request.client else "unknown"


def session_policy(state: AppState) -> SessionPolicy:
    """The idle and absolute session limits from settings."""
    return SessionPolicy(
        idle=timedelta(minutes=state.settings.idle_logoff_minutes),
        lifetime=timedelta(hours=state.settings.session_hours),
    )


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _sign_in_location(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/sign-in?next={quote(target, safe='')}"


class Guard:
    """A route dependency that checks one permission (or documents why a route is public)."""

    def __init__(
        self,
        permission: Permission | None,
        *,
        public_reason: str | None = None,
        mfa: bool = True,
        keeps_alive: bool = True,
    ) -> None:
        self.permission = permission
        self.public_reason = public_reason
        self.mfa = mfa
        # False for what a page asks by itself (the alarm poll): it must not keep an
        # unattended screen signed in, so it never refreshes the session's last-seen time.
        self.keeps_alive = keeps_alive

    def __repr__(self) -> str:
        return f"Guard({self.permission or 'public: ' + str(self.public_reason)})"

    async def __call__(self, request: Request) -> Staff | None:
        if self.permission is None:
            return None
        state: AppState = request.app.state.clinicflow
        staff = await run_in_threadpool(self._identify, request, state)
        if staff.via == "session" and request.method not in SAFE_METHODS:
            await _check_csrf(request, staff)
        request.state.staff = staff
        return staff

    def _identify(self, request: Request, state: AppState) -> Staff:
        """Who is calling: read in a read transaction; write only what must change (a session
        ended or touched at most every 30 s, a token's last use, a denial's audit row)."""
        now = state.clock.now()
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            staff = self._token_caller(state, header[7:].strip(), client_address(request), now)
        else:
            staff = self._session_caller(request, state, now)
        assert self.permission is not None  # noqa: S101  (checked by the caller)
        if not staff.may(self.permission):
            with state.db.transaction() as session:
                record_access(
                    session,
                    staff.actor,
                    "denied",
                    [],
                    at=now,
                    detail={
                        "path": request.url.path,
                        "needs": self.permission.value,
                        "address": staff.address,
                    },
                )
            raise HTTPException(
                403,
                f"Your role ({staff.user.role}) cannot open this page. "
                "Ask an administrator if your work needs it.",
            )
        return staff

    def _token_caller(self, state: AppState, secret: str, address: str, now: datetime) -> Staff:
        with state.db.read() as session:
            grant = token_grant(session, secret, now=now)
        if grant is None:
            raise HTTPException(
                401,
                "This access token is unknown, revoked or expired.",
                headers={"WWW-Authenticate": "Bearer"},
            )
        if grant.touch:
            with state.db.transaction() as session:
                touch_token(session, grant.token_id, now=now)
        return Staff(grant.user, grant.scopes, address, None, None, "token", now)

    def _session_caller(self, request: Request, state: AppState, now: datetime) -> Staff:
        with state.db.read() as session:
            check = check_session(
                session, request.cookies.get(SESSION_COOKIE), policy=session_policy(state), now=now
            )
        if check.end_reason is not None or (check.touch and self.keeps_alive):
            with state.db.transaction() as session:
                apply_session_check(session, check, now=now)
        active = check.active
        if active is None:
            if _is_api(request):
                raise HTTPException(
                    401,
                    "Sign in, or send a personal access token.",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            raise SignInNeeded(_sign_in_location(request))
        if self.mfa and not active.mfa_passed:
            if _is_api(request):
                raise HTTPException(401, "Finish signing in (MFA) first.")
            raise SignInNeeded("/sign-in/mfa" if active.user.mfa_enrolled else "/mfa/enrol")
        return Staff(
            active.user,
            ROLE_PERMISSIONS[active.user.role],
            client_address(request),
            active.csrf_token,
            active,
            "session",
            now,
        )


async def _check_csrf(request: Request, staff: Staff) -> None:
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
    if not sent or not staff.csrf_token or not hmac.compare_digest(sent, staff.csrf_token):
        raise HTTPException(
            403,
            "This form has expired or did not come from clinicflow. Reload the page and try again.",
        )


def require(
    permission: Permission, *, keeps_alive: bool = True
) -> Callable[[Request], Coroutine[Any, Any, Staff | None]]:
    """The guard for a route that needs `permission` (`keeps_alive=False`: a background poll,
    which leaves the session's idle clock alone)."""
    return Guard(permission, keeps_alive=keeps_alive)


def public(reason: str) -> Callable[[Request], Coroutine[Any, Any, Staff | None]]:
    """The guard of an open route, with the reason it needs no sign-in (the route walk reads it)."""
    return Guard(None, public_reason=reason)
