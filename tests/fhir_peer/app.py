"""The Starlette application: routes, the token endpoint, and errors as OperationOutcomes."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp
from tests.fhir_peer import bulk, discovery, rest
from tests.fhir_peer.auth import OAuthError
from tests.fhir_peer.context import FHIR_PATH, TOKEN_PATH, peer_of, token_url
from tests.fhir_peer.middleware import PeerMiddleware
from tests.fhir_peer.outcome import FhirError

if TYPE_CHECKING:
    from tests.fhir_peer.peer import FhirPeer

_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1


async def token(request: Request) -> Response:
    """POST /auth/token: client_credentials with a private_key_jwt client assertion."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type != "application/x-www-form-urlencoded":
            raise OAuthError(
                400,
                "invalid_request",
                "the token request must be application/x-www-form-urlencoded",
            )
        form = parse_qs((await request.body()).decode(), keep_blank_values=True)
        body = await peer_of(request).auth.exchange(form, token_url(request))
    except OAuthError as exc:
        error = {"error": exc.error, "error_description": exc.description}
        return JSONResponse(error, exc.status, headers=_NO_STORE)
    return JSONResponse(body, headers=_NO_STORE)


async def _fhir_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FhirError)
    return exc.response()


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no route) and 405 (wrong method), as OperationOutcomes."""
    assert isinstance(exc, HTTPException)
    code = {404: "not-found", 405: "not-supported"}.get(exc.status_code, "processing")
    return FhirError(exc.status_code, code, str(exc.detail), exc.headers).response()


async def _crash(_request: Request, exc: Exception) -> Response:
    return FhirError(500, "exception", f"internal error in the test peer: {exc!r}").response()


def build_app(peer: FhirPeer) -> ASGIApp:
    """The peer's ASGI app: request log and faults outside, then the routes."""
    f = FHIR_PATH
    routes = [
        Route(
            f"{f}/.well-known/smart-configuration", discovery.smart_configuration, methods=["GET"]
        ),
        Route(f"{f}/metadata", discovery.metadata, methods=["GET"]),
        Route(TOKEN_PATH, token, methods=["POST"]),
        Route(f"{f}/$export", bulk.kickoff_system, methods=["GET"]),
        Route(f"{f}/Patient/$export", bulk.kickoff_patient, methods=["GET"]),
        Route(f"{f}/Group/{{group_id}}/$export", bulk.kickoff_group, methods=["GET"]),
        Route(f"{f}/$export-status/{{job_id}}", bulk.status, methods=["GET"]),
        Route(f"{f}/$export-status/{{job_id}}", bulk.cancel, methods=["DELETE"]),
        Route(f"{f}/$export-file/{{job_id}}/{{name}}", bulk.download, methods=["GET"]),
        Route(f"{f}/{{type}}/_search", rest.search, methods=["POST"]),
        Route(f"{f}/{{type}}/{{id}}/_history/{{vid}}", rest.vread, methods=["GET"]),
        Route(f"{f}/{{type}}", rest.search, methods=["GET"]),
        Route(f"{f}/{{type}}", rest.create, methods=["POST"]),
        Route(f"{f}/{{type}}/{{id}}", rest.read, methods=["GET"]),
        Route(f"{f}/{{type}}/{{id}}", rest.update, methods=["PUT"]),
        Route(f"{f}/{{type}}/{{id}}", rest.delete, methods=["DELETE"]),
    ]
    app = Starlette(
        routes=routes,
        exception_handlers={FhirError: _fhir_error, HTTPException: _http_error, Exception: _crash},
    )
    app.state.peer = peer
    return PeerMiddleware(app, peer.faults, peer.record_request)
