"""The FastAPI application factory."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CollectorRegistry, Counter, Histogram

from clinicflow.clock import Clock, SystemClock
from clinicflow.logs import request_id_var
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.web import health, jwks, pages, twilio_webhooks
from clinicflow.web.patient_pages import router as patient_pages_router
from clinicflow.web.state import AppState

# No inline script or style anywhere: the pages load /static files only.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


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
        return response

    app.include_router(health.router)
    app.include_router(pages.router)
    app.include_router(jwks.router)
    app.include_router(patient_pages_router)
    app.include_router(twilio_webhooks.router)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    return app
