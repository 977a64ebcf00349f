"""SMART Backend Services token endpoint (client_credentials + private_key_jwt) and bearer checks.

Validation follows SMART App Launch 2.x "Backend Services" and "Client Authentication:
Asymmetric": the client assertion is a JWT signed with RS384 or ES384 by a key the client
registered (found by `kid` in its JWKS), with iss = sub = client_id, aud = this token endpoint,
an `exp` no more than five minutes ahead, and a `jti` never seen before. Any failure there is
`invalid_client` (401, RFC 6749 §5.2); malformed requests are `invalid_request`, unusable scopes
`invalid_scope`. Errors say exactly what was wrong, so a client bug is easy to find.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt
from tests.fhir_peer.outcome import FhirError
from tests.fhir_peer.scopes import Scope, parse_scope

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_AHEAD_S = 300  # "no more than five minutes in the future"
CLOCK_SKEW_S = 10  # tolerance either way, as real servers allow for clock drift
# A client's registered keys: a JWKS dict ({"keys": [...]}) or a JWKS URL fetched at token time.
JwksSource = Mapping[str, Any] | str


class OAuthError(Exception):
    """An RFC 6749 §5.2 error response: `error` code and a description of what was wrong."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


def invalid_client(description: str) -> OAuthError:
    """401 invalid_client: the client assertion did not authenticate the client."""
    return OAuthError(401, "invalid_client", description)


@dataclass(frozen=True)
class Grant:
    """What an access token allows, and until when."""

    client_id: str
    scopes: tuple[Scope, ...]
    expires_at: datetime


class TokenService:
    """Issues and checks access tokens; thread-safe (requests and tests run concurrently)."""

    def __init__(
        self,
        clients: dict[str, JwksSource],
        lifetime_s: Callable[[], int],
        clock: Callable[[], datetime],
    ) -> None:
        # Held, not copied: a client registered later (in the config or here) can sign in.
        self.clients = clients
        self._lifetime_s = lifetime_s
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, Grant] = {}
        self._seen_jti: set[tuple[str, str]] = set()
        self.successes = 0

    async def exchange(self, form: Mapping[str, list[str]], token_url: str) -> dict[str, Any]:
        """The token response for a client_credentials request, or raises OAuthError."""
        params = _single_params(form)
        if params.get("grant_type") != "client_credentials":
            raise OAuthError(
                400,
                "unsupported_grant_type",
                f"grant_type must be client_credentials, got {params.get('grant_type')!r}",
            )
        if params.get("client_assertion_type") != ASSERTION_TYPE:
            raise OAuthError(
                400, "invalid_request", f"client_assertion_type must be {ASSERTION_TYPE}"
            )
        assertion = params.get("client_assertion")
        if not assertion:
            raise OAuthError(400, "invalid_request", "client_assertion is missing")
        client_id = await self._authenticate(assertion, token_url)
        scopes = _grantable(params.get("scope", ""))
        lifetime_s = self._lifetime_s()
        expires_at = self._clock() + timedelta(seconds=lifetime_s)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = Grant(client_id, scopes, expires_at)
            self.successes += 1
        return {
            "access_token": token,
            "token_type": "bearer",
            "expires_in": lifetime_s,
            "scope": " ".join(scope.text for scope in scopes),
        }

    async def _authenticate(self, assertion: str, token_url: str) -> str:
        """The client id the assertion proves, after every SMART check."""
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise invalid_client(f"client_assertion is not a valid JWT ({exc})") from None
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise invalid_client(f"alg {alg!r} is not allowed; use one of {', '.join(ALGORITHMS)}")
        if header.get("typ", "JWT") != "JWT":
            raise invalid_client(f"JWT header typ must be JWT, got {header.get('typ')!r}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise invalid_client("JWT header has no kid naming the signing key")
        client_id = claims.get("iss")
        if not isinstance(client_id, str) or client_id not in self.clients:
            raise invalid_client(f"iss {client_id!r} is not a registered client_id")
        if claims.get("sub") != client_id:
            raise invalid_client(f"sub must equal iss ({client_id!r}), got {claims.get('sub')!r}")
        jwk = _find_key(await self._jwks(client_id), kid, alg)
        verified = _verify(assertion, jwk, alg, token_url, kid)
        self._check_times(verified)
        jti = verified.get("jti")
        if not isinstance(jti, str) or not jti:
            raise invalid_client("jti must be a non-empty string")
        with self._lock:
            if (client_id, jti) in self._seen_jti:
                raise invalid_client(f"jti {jti!r} was already used (replayed assertion)")
            self._seen_jti.add((client_id, jti))
        return client_id

    def _check_times(self, claims: Mapping[str, Any]) -> None:
        now = self._clock().timestamp()
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise invalid_client("exp must be a number of seconds since the epoch")
        if exp + CLOCK_SKEW_S <= now:
            raise invalid_client(f"client_assertion expired {int(now - exp)} s ago")
        if exp > now + MAX_ASSERTION_AHEAD_S + CLOCK_SKEW_S:
            raise invalid_client(
                f"exp is {int(exp - now)} s in the future; at most {MAX_ASSERTION_AHEAD_S} allowed"
            )
        nbf = claims.get("nbf")
        if isinstance(nbf, int | float) and nbf > now + CLOCK_SKEW_S:
            raise invalid_client("client_assertion is not valid yet (nbf in the future)")

    async def _jwks(self, client_id: str) -> Mapping[str, Any]:
        source = self.clients[client_id]
        if isinstance(source, str):
            # Fetched on every token request, as an EHR that reads the registered JWKS URL
            # would after a cache expiry: key rotation at the client shows up at once.
            try:
                async with httpx.AsyncClient(timeout=5.0) as http:
                    response = await http.get(source)
                    response.raise_for_status()
                    fetched = response.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise invalid_client(f"could not fetch the JWKS at {source}: {exc}") from None
            if not isinstance(fetched, dict):
                raise invalid_client(f"the JWKS at {source} is not a JSON object")
            return fetched
        return source

    def check(self, authorization: str | None) -> Grant:
        """The grant of a live bearer token, else a 401 FhirError (RFC 6750 §3)."""
        if not authorization:
            raise _unauthorized("no Authorization: Bearer token")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _unauthorized("Authorization header is not 'Bearer <token>'")
        with self._lock:
            grant = self._tokens.get(token.strip())
        if grant is None:
            raise _unauthorized("access token is unknown or was revoked")
        if grant.expires_at <= self._clock():
            raise _unauthorized("access token expired")
        return grant

    def revoke_all(self) -> None:
        """Every token issued so far stops working (tests a client's refresh-on-401)."""
        with self._lock:
            self._tokens.clear()


def _single_params(form: Mapping[str, list[str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for name, values in form.items():
        if len(values) > 1:
            # RFC 6749 §3.2: parameters MUST NOT be included more than once.
            raise OAuthError(400, "invalid_request", f"parameter {name} is repeated")
        params[name] = values[0]
    return params


def _grantable(requested: str) -> tuple[Scope, ...]:
    names = requested.split()
    if not names:
        raise OAuthError(400, "invalid_scope", "no scope requested; ask for e.g. system/*.rs")
    granted = tuple(scope for scope in map(parse_scope, names) if scope is not None)
    if not granted:
        raise OAuthError(
            400,
            "invalid_scope",
            f"none of the requested scopes can be granted ({requested}); only system/ scopes "
            "with .read/.write/.* or v2 permissions (cruds) are",
        )
    return granted


def _find_key(jwks: Mapping[str, Any], kid: str, alg: str) -> dict[str, Any]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        raise invalid_client("the registered JWKS has no keys list")
    for key in keys:
        if isinstance(key, dict) and key.get("kid") == kid:
            if key.get("alg", alg) != alg:
                raise invalid_client(f"key {kid!r} is registered for {key.get('alg')}, not {alg}")
            expected = ("RSA", None) if alg == "RS384" else ("EC", "P-384")
            if (key.get("kty"), key.get("crv")) != expected:
                raise invalid_client(f"key {kid!r} is not a {alg} key ({key.get('kty')})")
            return key
    raise invalid_client(f"no registered key has kid {kid!r}")


def _verify(
    assertion: str, jwk: dict[str, Any], alg: str, token_url: str, kid: str
) -> dict[str, Any]:
    try:
        key = jwt.PyJWK(jwk, algorithm=alg)
        claims: dict[str, Any] = jwt.decode(
            assertion,
            key,
            algorithms=[alg],
            audience=token_url,
            # Times are checked against the peer's (settable) wall clock in _check_times.
            options={
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": ["iss", "sub", "aud", "exp", "jti"],
            },
        )
    except jwt.InvalidSignatureError:
        raise invalid_client(f"signature does not verify with registered key {kid!r}") from None
    except jwt.InvalidAudienceError:
        raise invalid_client(f"aud must be the token endpoint URL {token_url}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise invalid_client(f"claim {exc.claim!r} is required") from None
    except jwt.PyJWTError as exc:
        raise invalid_client(f"client_assertion rejected: {exc}") from None
    return claims


def _unauthorized(description: str) -> FhirError:
    challenge = f'Bearer realm="fhir", error="invalid_token", error_description="{description}"'
    return FhirError(401, "security", description, {"WWW-Authenticate": challenge})
