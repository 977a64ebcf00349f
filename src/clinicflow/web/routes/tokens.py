"""Personal access tokens: the automation team's scripts call the API with one (shown once)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from clinicflow.errors import InputError
from clinicflow.security.permissions import ROLE_PERMISSIONS, Permission
from clinicflow.security.tokens import create_token, list_tokens, revoke_token
from clinicflow.web.auth import Staff, require
from clinicflow.web.health import State
from clinicflow.web.params import RowId
from clinicflow.web.staff_ui import render

router = APIRouter()
Owner = Annotated[Staff, Depends(require(Permission.TOKENS_USE))]


def _page(
    request: Request,
    state: State,
    staff: Staff,
    *,
    secret: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with state.db.transaction() as session:
        tokens = list_tokens(session, staff.user)
    scopes = sorted(p.value for p in ROLE_PERMISSIONS[staff.user.role] if p != Permission.ACCOUNT)
    return render(
        request,
        "staff/tokens.html",
        title="Tokens",
        staff=staff,
        tokens=tokens,
        scopes=scopes,
        secret=secret,
        error=error,
        status_code=status_code,
    )


@router.get("/account/tokens", response_class=HTMLResponse)
def tokens_page(request: Request, state: State, staff: Owner) -> HTMLResponse:
    """Your tokens, and a form for a new one."""
    return _page(request, state, staff)


@router.post("/account/tokens", response_class=HTMLResponse)
async def new_token(request: Request, state: State, staff: Owner) -> HTMLResponse:
    """Make a token with the chosen scopes; its secret is on this page once, never again."""
    form = await request.form()
    scopes = [str(v) for v in form.getlist("scopes")]
    name = str(form.get("name") or "")
    days_text = str(form.get("days") or "90")

    def make() -> str:
        with state.db.transaction() as session:
            return create_token(
                session,
                staff.user,
                name=name,
                scopes=[*scopes, "account"],
                days=int(days_text) if days_text.isdigit() else 0,
                now=staff.seen_at,
            )

    try:
        secret = await run_in_threadpool(make)
    except InputError as exc:
        return await run_in_threadpool(
            _page, request, state, staff, error=exc.message, status_code=422
        )
    return await run_in_threadpool(_page, request, state, staff, secret=secret)


@router.post("/account/tokens/{token_id}/revoke", response_model=None)
def revoke(state: State, staff: Owner, token_id: RowId) -> Response:
    """Revoke a token at once."""
    with state.db.transaction() as session:
        revoke_token(session, staff.user, token_id, now=staff.seen_at)
    return RedirectResponse("/account/tokens", status_code=303)
