"""SMART Backend Services (SMART App Launch 2.x): how a back-office service signs in to an EHR.

The token endpoint comes from `{base}/.well-known/smart-configuration`. We sign a short JWT
(the client assertion: iss = sub = client id, aud = token endpoint, 5-minute exp, fresh jti) with
the practice's key, trade it for an access token (client_credentials grant), and keep the token
until shortly before it expires. A 401 on a FHIR call means the EHR dropped the token early
(revoked, restarted): we fetch a new one and retry that request once, never in a loop.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import jwt

from clinicflow.clock import SystemClock
from clinicflow.ehr.http import DEFAULT_TIMEOUT, outcome_text
from clinicflow.ehr.signing import SigningKey
from clinicflow.errors import EhrError

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = timedelta(minutes=5)  # the most SMART lets a server accept
DEFAULT_SCOPES = "system/*.rs"
OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


@dataclass(frozen=True)
class SmartClient:
    """Who we are to the EHR: the client id it registered, our key, and what we ask for."""

    client_id: str
    key: SigningKey
    scopes: str = DEFAULT_SCOPES


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when to stop using it."""

    value: str
    refresh_at: datetime
    scope: str


def client_assertion(client: SmartClient, token_endpoint: str, now: datetime) -> str:
    """The signed JWT that proves we hold the registered key (SMART Backend Services §4.1)."""
    claims = {
        "iss": client.client_id,
        "sub": client.client_id,
        "aud": token_endpoint,
        "exp": int((now + ASSERTION_LIFETIME).timestamp()),
        "iat": int(now.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    headers = {"kid": client.key.kid, "typ": "JWT"}
    return jwt.encode(
        claims, client.key.private_key, algorithm=str(client.key.alg), headers=headers
    )


def discover_token_endpoint(http: httpx.Client, base_url: str) -> str:
    """The token endpoint from `.well-known/smart-configuration`, else the CapabilityStatement."""
    base = base_url.rstrip("/")
    response = http.get(f"{base}/.well-known/smart-configuration")
    if response.status_code == 200:
        endpoint = _json(response).get("token_endpoint")
        if isinstance(endpoint, str) and endpoint:
            return endpoint
    metadata = http.get(f"{base}/metadata", headers={"Accept": "application/fhir+json"})
    if metadata.status_code == 200:
        for rest in _json(metadata).get("rest") or ():
            for ext in (rest.get("security") or {}).get("extension") or ():
                if ext.get("url") != OAUTH_URIS:
                    continue
                for sub in ext.get("extension") or ():
                    if sub.get("url") == "token" and sub.get("valueUri"):
                        return str(sub["valueUri"])
    raise EhrError(
        f"{base} publishes no SMART token endpoint (no .well-known/smart-configuration, "
        f"answered {response.status_code}). Check CLINICFLOW_FHIR_BASE_URL.",
        code="ehr.no_smart",
    )


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


class SmartAuth(httpx.Auth):
    """httpx auth that adds a SMART Backend Services bearer token and renews it when needed."""

    def __init__(
        self,
        base_url: str,
        client: SmartClient,
        *,
        now: Callable[[], datetime] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url
        self.client = client
        self._now = now or SystemClock().now  # the EHR checks exp against its wall clock
        self._http = httpx.Client(timeout=DEFAULT_TIMEOUT, transport=transport)
        self._lock = threading.Lock()
        self._endpoint: str | None = None
        self._token: AccessToken | None = None
        self.tokens_fetched = 0

    @property
    def token_endpoint(self) -> str:
        """Discovered once, on first use."""
        if self._endpoint is None:
            self._endpoint = discover_token_endpoint(self._http, self.base_url)
        return self._endpoint

    def access_token(self) -> AccessToken:
        """The cached token, or a new one when it is about to expire."""
        with self._lock:
            token = self._token
            if token is None or self._now() >= token.refresh_at:
                token = self._token = self._fetch()
            return token

    def forget(self, value: str) -> None:
        """Drop `value` if it is still the cached token (another thread may have renewed it)."""
        with self._lock:
            if self._token is not None and self._token.value == value:
                self._token = None

    def _fetch(self) -> AccessToken:
        endpoint = self.token_endpoint
        now = self._now()
        form = {
            "grant_type": "client_credentials",
            "scope": self.client.scopes,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": client_assertion(self.client, endpoint, now),
        }
        try:
            response = self._http.post(endpoint, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise EhrError(
                f"The EHR's token endpoint {endpoint} did not answer ({exc}).", retryable=True
            ) from exc
        body = _json(response)
        if response.status_code != 200 or not body.get("access_token"):
            said = body.get("error_description") or outcome_text(body) or response.text[:200]
            raise EhrError(
                f"The EHR refused our sign-in ({response.status_code} "
                f"{body.get('error', 'error')}: {said}). Check CLINICFLOW_FHIR_CLIENT_ID and that "
                "the EHR has our public key (the JWKS at /.well-known/jwks.json) registered.",
                status=response.status_code,
                code="ehr.auth",
                retryable=response.status_code in (429, 503) or response.status_code >= 500,
            )
        lifetime = float(body.get("expires_in") or 300)
        # Renew a minute early (a fifth early for short tokens) so no call goes out on a
        # token that expires in flight.
        margin = min(60.0, lifetime / 5)
        self.tokens_fetched += 1
        return AccessToken(
            value=str(body["access_token"]),
            refresh_at=now + timedelta(seconds=lifetime - margin),
            scope=str(body.get("scope") or ""),
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """Send with the token; on 401 renew it and send once more."""
        token = self.access_token()
        request.headers["Authorization"] = f"Bearer {token.value}"
        response = yield request
        if response.status_code == 401:
            self.forget(token.value)
            request.headers["Authorization"] = f"Bearer {self.access_token().value}"
            yield request

    def close(self) -> None:
        """Close the token endpoint's connection pool."""
        self._http.close()
