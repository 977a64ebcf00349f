"""The FastAPI application factory."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram

from clinicflow.clock import Clock, SystemClock
from clinicflow.logs import request_id_var
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.web import health, jwks, pages, signin, twilio_webhooks
from clinicflow.web.auth import SignInNeeded
from clinicflow.web.claim_pages import router as claim_pages_router
from clinicflow.web.patient_pages import router as patient_pages_router
from clinicflow.web.routes import (
    api,
    audit,
    home,
    impact,
    messages,
    oncall,
    patients,
    review,
    today,
    tokens,
    triage,
    users,
    waitlist,
)
from clinicflow.web.staff_ui import render
from clinicflow.web.state import AppState

# No inline script or style anywhere: the pages load /static files only. Forms post only here.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
HSTS = "max-age=31536000; includeSubDomains"


def create_app(
    settings: Settings, *, db: Database | None = None, clock: Clock | None = None
) -> FastAPI:
    """Build the web app over `settings` (and an open database, in tests)."""
    app = FastAPI(title="clinicflow", version="0.1.0", docs_url="/api/docs", redoc_url=None)
    state = AppState(
        settings=settings,
        db=db or Database.from_url(settings.resolved_database_url),
        clock=clock or SystemClock(),
    )
    app.state.clinicflow = state
    metrics = CollectorRegistry()
    app.state.metrics = metrics
    metrics.register(health.ReplicaCollector(state))
    requests = Counter(
        "clinicflow_http_requests", "HTTP requests", ["method", "status"], registry=metrics
    )
    latency = Histogram("clinicflow_http_request_seconds", "Request latency", registry=metrics)

    @app.middleware("http")
    async def request_context(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("X-Request-ID") or secrets.token_hex(8)
        token = request_id_var.set(request_id)
        try:
            with latency.time():
                response = await call_next(request)
        finally:
            request_id_var.reset(token)
        requests.labels(request.method, str(response.status_code)).inc()
        response.headers["X-Request-ID"] = request_id
        response.headers.update(SECURITY_HEADERS)
        if hsts:
            response.headers["Strict-Transport-Security"] = HSTS
        return response

    @app.exception_handler(SignInNeeded)
    async def sign_in_needed(_request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> Response:
        # People get a page in the app's layout; the API and scripts keep FastAPI's JSON.
        wants_page = "text/html" in request.headers.get("accept", "")
        if not wants_page or request.url.path.startswith("/api/"):
            return await http_exception_handler(request, exc)
        staff = getattr(request.state, "staff", None)
        headings = {403: "Not for your role", 404: "Not found", 401: "Sign in needed"}
        return render(
            request,
            "staff/problem.html",
            title="Problem",
            staff=staff,
            status_code=exc.status_code,
            heading=headings.get(exc.status_code, "Something is not right"),
            message=str(exc.detail),
        )

    # HSTS only when the app is served over TLS: on plain http it would lock out the next visit.
    hsts = settings.public_url.startswith("https://")
    app.include_router(health.router)
    app.include_router(signin.router)
    app.include_router(home.router)
    app.include_router(today.router)
    app.include_router(patients.router)
    app.include_router(waitlist.router)
    app.include_router(review.router)
    app.include_router(messages.router)
    app.include_router(oncall.router)
    app.include_router(audit.router)
    app.include_router(tokens.router)
    app.include_router(users.router)
    app.include_router(pages.router)
    app.include_router(impact.router)
    app.include_router(triage.router)
    app.include_router(api.router)
    app.include_router(jwks.router)
    app.include_router(patient_pages_router)
    app.include_router(claim_pages_router)
    app.include_router(twilio_webhooks.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app
