"""What every handler needs from a request: the peer, the absolute base URL, the caller's grant."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, cast

from starlette.requests import Request
from tests.fhir_peer.auth import Grant
from tests.fhir_peer.outcome import FhirError
from tests.fhir_peer.scopes import allows

if TYPE_CHECKING:
    from tests.fhir_peer.peer import FhirPeer

FHIR_PATH = "/fhir"
TOKEN_PATH = "/auth/token"
_TYPE_NAME = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ACTIONS = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}


def peer_of(request: Request) -> FhirPeer:
    """The FhirPeer serving this request."""
    return cast("FhirPeer", request.app.state.peer)


def origin(request: Request) -> str:
    """scheme://host:port as the client addressed us (absolute URLs are built from it)."""
    return str(request.base_url).rstrip("/")


def fhir_base(request: Request) -> str:
    """The absolute FHIR base URL, e.g. http://127.0.0.1:54321/fhir."""
    return origin(request) + FHIR_PATH


def token_url(request: Request) -> str:
    """The absolute token endpoint URL: what a client assertion's `aud` must be."""
    return origin(request) + TOKEN_PATH


def bearer(request: Request) -> Grant:
    """The caller's grant; 401 without a live token."""
    return peer_of(request).auth.check(request.headers.get("authorization"))


def authorize(request: Request, resource_type: str, letter: str) -> Grant:
    """The caller's grant if it allows `letter` (c/r/u/d/s) on the type; else 401/404/403.

    Authentication comes first, so an anonymous caller learns nothing about the types served.
    """
    grant = bearer(request)
    known_type(request, resource_type)
    if not allows(grant.scopes, resource_type, letter):
        granted = " ".join(scope.text for scope in grant.scopes)
        raise FhirError(
            403,
            "forbidden",
            f"the access token's scopes ({granted}) do not allow {_ACTIONS[letter]} "
            f"on {resource_type}",
        )
    return grant


def known_type(request: Request, resource_type: str) -> str:
    """The type name if the peer serves it, else 404 not-supported."""
    if not _TYPE_NAME.match(resource_type) or resource_type not in set(
        peer_of(request).supported_types()
    ):
        raise FhirError(
            404, "not-supported", f"resource type {resource_type!r} is not supported here"
        )
    return resource_type
