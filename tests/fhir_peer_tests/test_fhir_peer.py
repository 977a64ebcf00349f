"""The FHIR test peer over real HTTP on loopback: SMART auth, REST, search, Bulk Data, faults.

These pin the wire behaviour clinicflow's EHR client is tested against, so a client test that
fails points at the client, not at the peer.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.types import Receive, Scope, Send
from tests.fhir_peer import Fault, FhirPeer, PeerConfig, running_peer
from tests.fhir_peer.fhirtime import utc_now
from tests.fhir_peer.server import running_app

CLIENT = "clinicflow-test"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FHIR_JSON = {"Accept": "application/fhir+json"}
ASYNC = {"Accept": "application/fhir+json", "Prefer": "respond-async"}
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Keys:
    """The client's RS384 and ES384 signing keys and the public JWKS registered for them."""

    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey
    jwks: dict[str, Any]


@pytest.fixture(scope="module")
def keys() -> Keys:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP384R1())
    rsa_jwk = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    ec_jwk = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    rsa_jwk.update(kid="rs-1", alg="RS384", use="sig")
    ec_jwk.update(kid="es-1", alg="ES384", use="sig")
    return Keys(rsa_key, ec_key, {"keys": [rsa_jwk, ec_jwk]})


class PeerSwitch:
    """An ASGI app passing each request to the current test's peer.

    One uvicorn server per module instead of one per test: stopping uvicorn takes ~0.15 s
    (its shutdown polls at 0.1 s), which would dominate this file's run time.
    """

    def __init__(self) -> None:
        self.peer: FhirPeer | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.peer is not None, "no peer is switched in"
        await self.peer.app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[PeerSwitch, str]]:
    switch = PeerSwitch()
    with running_app(switch) as url:
        yield switch, url


@pytest.fixture
def peer(keys: Keys) -> FhirPeer:
    return FhirPeer(PeerConfig(clients={CLIENT: keys.jwks}, export_polls=1, retry_after_s=1))


@pytest.fixture
def base(server: tuple[PeerSwitch, str], peer: FhirPeer) -> Iterator[str]:
    switch, url = server
    switch.peer = peer
    yield url
    switch.peer = None


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5.0) as client:
        yield client


def token_url(http: httpx.Client, base: str) -> str:
    config = http.get(f"{base}/.well-known/smart-configuration")
    assert config.status_code == 200
    url: str = config.json()["token_endpoint"]
    return url


def assertion(keys: Keys, audience: str, *, alg: str = "RS384", **overrides: Any) -> str:
    """A client assertion as SMART Backend Services wants it; `overrides` break one part."""
    now = int(utc_now().timestamp())
    claims: dict[str, Any] = {
        "iss": CLIENT,
        "sub": CLIENT,
        "aud": audience,
        "exp": now + 300,
        "iat": now,
        "jti": uuid.uuid4().hex,
    }
    kid = overrides.pop("kid", "rs-1" if alg == "RS384" else "es-1")
    key = overrides.pop("key", keys.rsa if alg == "RS384" else keys.ec)
    claims.update(overrides)
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def token_request(
    http: httpx.Client, url: str, signed: str, scope: str = "system/*.cruds"
) -> httpx.Response:
    return http.post(
        url,
        data={
            "grant_type": "client_credentials",
            "scope": scope,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": signed,
        },
    )


def bearer(
    http: httpx.Client, base: str, keys: Keys, scope: str = "system/*.cruds"
) -> dict[str, str]:
    url = token_url(http, base)
    response = token_request(http, url, assertion(keys, url), scope)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture
def auth(http: httpx.Client, base: str, keys: Keys) -> dict[str, str]:
    return bearer(http, base, keys)


def at(peer: FhirPeer, moment: datetime) -> None:
    """Set the peer's clock (meta.lastUpdated of what is written next)."""
    peer.now = lambda: moment


def patient(fhir_id: str, mrn: str | None = None) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": "Patient", "id": fhir_id, "active": True}
    if mrn is not None:
        resource["identifier"] = [{"system": "urn:mrn", "value": mrn}]
    return resource


def appointment(
    fhir_id: str, start: str, patient_id: str, status: str = "booked"
) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "id": fhir_id,
        "status": status,
        "start": start,
        "participant": [
            {"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"},
            {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"},
        ],
    }


def ids(bundle: dict[str, Any], mode: str = "match") -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == mode]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    return next((item["url"] for item in bundle["link"] if item["relation"] == relation), None)


def assert_outcome(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    issue = body["issue"][0]
    assert issue["code"] == code
    assert issue["diagnostics"]
    diagnostics: str = issue["diagnostics"]
    return diagnostics


# --- discovery -----------------------------------------------------------------------------


def test_discovery_documents_name_the_token_endpoint_on_the_same_host(
    http: httpx.Client, base: str
) -> None:
    config = http.get(f"{base}/.well-known/smart-configuration").json()
    origin = base.removesuffix("/fhir")
    assert config["token_endpoint"] == f"{origin}/auth/token"
    assert config["grant_types_supported"] == ["client_credentials"]
    assert config["token_endpoint_auth_methods_supported"] == ["private_key_jwt"]
    assert set(config["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert "client-confidential-asymmetric" in config["capabilities"]

    capability = http.get(f"{base}/metadata", headers=FHIR_JSON)
    assert capability.status_code == 200
    assert capability.headers["content-type"].startswith("application/fhir+json")
    statement = capability.json()
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    assert {
        "name": "export",
        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
    } in rest["operation"]
    oauth = rest["security"]["extension"][0]
    assert oauth["extension"][0] == {"url": "token", "valueUri": config["token_endpoint"]}
    by_type = {r["type"]: r for r in rest["resource"]}
    assert {"Appointment", "Patient", "Slot", "Communication", "Coverage"} <= by_type.keys()
    params = {p["name"] for p in by_type["Appointment"]["searchParam"]}
    assert {"_id", "_lastUpdated", "date", "status", "patient"} <= params


# --- SMART Backend Services ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS384", "ES384"])
def test_token_exchange_with_either_algorithm(
    http: httpx.Client, base: str, peer: FhirPeer, keys: Keys, alg: str
) -> None:
    url = token_url(http, base)
    response = token_request(
        http, url, assertion(keys, url, alg=alg), scope="system/*.rs patient/*.read launch"
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 300
    assert body["scope"] == "system/*.rs"  # only the grantable system scope is echoed
    assert peer.token_requests == 1
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert http.get(f"{base}/Patient", headers=headers).status_code == 200


def _wrong_key(_keys: Keys) -> dict[str, Any]:
    return {"key": rsa.generate_private_key(public_exponent=65537, key_size=2048)}


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        (_wrong_key, "signature does not verify"),
        (lambda _: {"aud": "http://127.0.0.1:1/auth/token"}, "aud must be the token endpoint"),
        (lambda _: {"exp": int(utc_now().timestamp()) - 60}, "expired"),
        (lambda _: {"exp": int(utc_now().timestamp()) + 900}, "in the future"),
        (lambda _: {"kid": "nobody"}, "no registered key has kid"),
        (lambda _: {"iss": "stranger", "sub": "stranger"}, "not a registered client_id"),
        (lambda _: {"sub": "someone-else"}, "sub must equal iss"),
    ],
    ids=["signature", "aud", "expired", "exp-too-far", "unknown-kid", "unknown-client", "sub"],
)
def test_token_endpoint_rejects_a_bad_assertion_as_invalid_client(
    http: httpx.Client, base: str, peer: FhirPeer, keys: Keys, breakage: Any, expected: str
) -> None:
    url = token_url(http, base)
    response = token_request(http, url, assertion(keys, url, **breakage(keys)))
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client"
    assert expected in body["error_description"]
    assert peer.token_requests == 0


def test_token_endpoint_rejects_a_replayed_jti_and_a_symmetric_alg(
    http: httpx.Client, base: str, keys: Keys
) -> None:
    url = token_url(http, base)
    signed = assertion(keys, url, jti="once")
    assert token_request(http, url, signed).status_code == 200
    replay = token_request(http, url, assertion(keys, url, jti="once"))
    assert replay.status_code == 401
    assert "already used" in replay.json()["error_description"]

    hs = jwt.encode({"iss": CLIENT}, "shared-secret-long-enough-for-hs256!", algorithm="HS256")
    refused = token_request(http, url, hs)
    assert refused.json()["error"] == "invalid_client"
    assert "'HS256' is not allowed" in refused.json()["error_description"]


def test_token_endpoint_request_errors(http: httpx.Client, base: str, keys: Keys) -> None:
    url = token_url(http, base)
    no_scope = token_request(http, url, assertion(keys, url), scope="patient/*.read openid")
    assert (no_scope.status_code, no_scope.json()["error"]) == (400, "invalid_scope")
    grant = http.post(url, data={"grant_type": "password", "client_assertion": "x"})
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    missing = http.post(url, data={"grant_type": "client_credentials"})
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")


def test_assertions_are_checked_against_the_settable_wall_clock(
    http: httpx.Client, base: str, peer: FhirPeer, keys: Keys
) -> None:
    url = token_url(http, base)
    peer.wall_clock = lambda: utc_now() + timedelta(hours=1)
    late = token_request(http, url, assertion(keys, url))
    assert "expired" in late.json()["error_description"]
    peer.wall_clock = utc_now
    headers = bearer(http, base, keys)
    peer.wall_clock = lambda: utc_now() + timedelta(seconds=301)  # past expires_in
    expired = http.get(f"{base}/Patient", headers=headers)
    assert "expired" in assert_outcome(expired, 401, "security")


def test_fhir_calls_need_a_live_token(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    anonymous = http.get(f"{base}/Patient")
    assert_outcome(anonymous, 401, "security")
    assert 'error="invalid_token"' in anonymous.headers["www-authenticate"]
    assert http.get(f"{base}/Patient", headers=auth).status_code == 200
    peer.revoke_tokens()
    revoked = http.get(f"{base}/Patient", headers=auth)
    assert "revoked" in assert_outcome(revoked, 401, "security")
    assert revoked.headers["www-authenticate"].startswith("Bearer ")


def test_writes_need_a_write_scope(
    http: httpx.Client, base: str, peer: FhirPeer, keys: Keys
) -> None:
    peer.put(patient("p1"))
    read_only = bearer(http, base, keys, scope="system/*.rs")
    assert http.get(f"{base}/Patient/p1", headers=read_only).status_code == 200
    refused = http.put(f"{base}/Patient/p1", json=patient("p1"), headers=read_only)
    assert "do not allow update" in assert_outcome(refused, 403, "forbidden")
    v1_write = bearer(http, base, keys, scope="system/Patient.read system/Patient.write")
    assert http.put(f"{base}/Patient/p1", json=patient("p1"), headers=v1_write).status_code == 200


def test_jwks_url_is_fetched_at_token_time(http: httpx.Client, keys: Keys) -> None:
    payload = json.dumps(keys.jwks).encode()

    class Jwks(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *_args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        jwks_url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        peer = FhirPeer(PeerConfig(clients={CLIENT: jwks_url}))
        with running_peer(peer) as base:
            url = token_url(http, base)
            assert token_request(http, url, assertion(keys, url, alg="ES384")).status_code == 200
    finally:
        server.shutdown()
        server.server_close()


# --- search --------------------------------------------------------------------------------


def test_search_paging_visits_every_resource_exactly_once(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    for n in range(50):
        # Groups of three share an instant, so (lastUpdated, id) ordering is exercised.
        at(peer, T0 + timedelta(seconds=n // 3))
        peer.put(patient(f"p{n:02d}"))
    seen: list[str] = []
    stamps: list[str] = []
    url: str | None = f"{base}/Patient?_count=7"
    pages = 0
    while url is not None:
        response = http.get(url, headers=auth)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+json")
        bundle = response.json()
        assert (bundle["type"], bundle["total"]) == ("searchset", 50)
        assert len(bundle.get("entry", [])) <= 7
        seen += ids(bundle)
        stamps += [e["resource"]["meta"]["lastUpdated"] for e in bundle.get("entry", [])]
        assert all(e["fullUrl"] == f"{base}/Patient/{e['resource']['id']}" for e in bundle["entry"])
        url = link(bundle, "next")
        if pages == 2:  # a resource added mid-way turns up once, at the end
            at(peer, T0 + timedelta(hours=1))
            peer.put(patient("late"))
        pages += 1
    assert pages == 8
    assert sorted(seen) == sorted([f"p{n:02d}" for n in range(50)] + ["late"])
    assert len(seen) == len(set(seen))
    assert stamps == sorted(stamps)
    assert seen[-1] == "late"
    forged = http.get(f"{base}/Patient?_page_token=not-ours", headers=auth)
    assert "not a page token" in assert_outcome(forged, 400, "invalid")


def test_search_by_last_updated(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    at(peer, T0)
    peer.put(patient("old"))
    at(peer, T0 + timedelta(minutes=5))
    newer = peer.put(patient("new"))
    assert newer["meta"] == {"versionId": "1", "lastUpdated": "2026-11-23T10:05:00.000Z"}

    def search(**params: str) -> list[str]:
        response = http.get(f"{base}/Patient", params=params, headers=auth)
        assert response.status_code == 200, response.text
        return ids(response.json())

    assert search(_lastUpdated="gt2026-11-23T10:00:00.000Z") == ["new"]
    assert search(_lastUpdated="ge2026-11-23T10:00:00Z") == ["old", "new"]
    assert search(_lastUpdated="lt2026-11-23T05:05:00-05:00") == ["old"]
    assert search(_lastUpdated="2026-11-23") == ["old", "new"]  # eq a day: the whole day
    assert search(_lastUpdated="gt2026-11-23") == []
    bad = http.get(
        f"{base}/Patient", params={"_lastUpdated": "gt2026-11-23T10:00:00"}, headers=auth
    )
    assert "no time zone" in assert_outcome(bad, 400, "invalid")
    unencoded_plus = http.get(
        f"{base}/Patient?_lastUpdated=gt2026-11-23T10:00:00+00:00", headers=auth
    )
    assert "%2B" in assert_outcome(unencoded_plus, 400, "invalid")


def test_appointment_date_patient_status_and_include(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.put(patient("ann"))
    peer.put(patient("bob"))
    peer.put(appointment("a1", "2026-11-23T09:00:00-05:00", "ann"))
    peer.put(appointment("a2", "2026-11-23T23:30:00-05:00", "bob"))  # 04:30Z on the 24th
    peer.put(appointment("a3", "2026-11-24T15:00:00Z", "ann", status="cancelled"))

    def search(query: str) -> dict[str, Any]:
        response = http.get(f"{base}/Appointment?{query}", headers=auth)
        assert response.status_code == 200, response.text
        bundle: dict[str, Any] = response.json()
        return bundle

    day = search("date=ge2026-11-23T00:00:00Z&date=lt2026-11-24T00:00:00Z")
    assert ids(day) == ["a1"]
    assert ids(search("date=ge2026-11-24")) == ["a2", "a3"]
    assert ids(search("patient=Patient/ann")) == ["a1", "a3"]
    assert ids(search("status=booked,arrived")) == ["a1", "a2"]
    included = search("patient=ann&status=booked&_include=Appointment:patient")
    assert ids(included) == ["a1"]
    assert ids(included, mode="include") == ["ann"]
    assert included["total"] == 1
    ignored = search("actor=Practitioner/dr1&_sort=-date")  # unknown: ignored, not echoed
    assert ids(ignored) == ["a1", "a2", "a3"]
    self_link = link(ignored, "self")
    assert self_link is not None
    assert "actor" not in self_link


def test_search_by_id_and_count_zero(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    for name in ("x", "y", "z"):
        peer.put(patient(name))
    by_id = http.get(f"{base}/Patient?_id=z,x,nope", headers=auth).json()
    assert ids(by_id) == ["x", "z"]
    counted = http.get(f"{base}/Patient?_count=0", headers=auth).json()
    assert (counted["total"], "entry" in counted, link(counted, "next")) == (3, False, None)


# --- read, update, create, delete ------------------------------------------------------------


def test_read_etag_and_conditional_update(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    at(peer, T0)
    peer.put(appointment("a1", "2026-11-25T15:00:00Z", "ann"))
    read = http.get(f"{base}/Appointment/a1", headers=auth)
    assert read.status_code == 200
    assert read.headers["etag"] == 'W/"1"'
    assert read.headers["last-modified"] == "Mon, 23 Nov 2026 10:00:00 GMT"
    assert read.json()["meta"]["versionId"] == "1"

    changed = {**read.json(), "status": "cancelled"}
    at(peer, T0 + timedelta(minutes=1))
    ok = http.put(f"{base}/Appointment/a1", json=changed, headers={**auth, "If-Match": 'W/"1"'})
    assert ok.status_code == 200, ok.text
    assert ok.headers["etag"] == 'W/"2"'
    assert ok.headers["location"] == f"{base}/Appointment/a1/_history/2"
    assert ok.json()["meta"] == {"versionId": "2", "lastUpdated": "2026-11-23T10:01:00.000Z"}
    assert peer.get("Appointment", "a1") == ok.json()

    stale = http.put(f"{base}/Appointment/a1", json=changed, headers={**auth, "If-Match": 'W/"1"'})
    assert 'is at W/"2"' in assert_outcome(stale, 412, "conflict")
    wrong_id = http.put(f"{base}/Appointment/a1", json={**changed, "id": "a2"}, headers=auth)
    assert "does not match" in assert_outcome(wrong_id, 400, "invalid")
    wrong_type = http.put(f"{base}/Appointment/a1", json=patient("a1"), headers=auth)
    assert "resourceType 'Patient'" in assert_outcome(wrong_type, 400, "invalid")
    new = http.put(f"{base}/Appointment/a9", json={**changed, "id": "a9"}, headers=auth)
    assert (new.status_code, new.headers["etag"]) == (201, 'W/"1"')
    assert_outcome(http.get(f"{base}/Appointment/zzz", headers=auth), 404, "not-found")
    assert_outcome(http.get(f"{base}/Nonsense/1", headers=auth), 404, "not-supported")


def test_conditional_create_is_idempotent(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    body = {
        "resourceType": "Communication",
        "status": "completed",
        "identifier": [{"system": "urn:clinicflow:msg", "value": "m-1"}],
    }
    headers = {**auth, "If-None-Exist": "identifier=urn:clinicflow:msg|m-1"}
    first = http.post(f"{base}/Communication", json=body, headers=headers)
    assert first.status_code == 201, first.text
    new_id = first.json()["id"]
    assert first.headers["location"] == f"{base}/Communication/{new_id}/_history/1"
    assert first.headers["etag"] == 'W/"1"'
    again = http.post(f"{base}/Communication", json=body, headers=headers)
    assert (again.status_code, again.json()["id"]) == (200, new_id)
    listed = http.get(f"{base}/Communication", headers=auth).json()
    assert listed["total"] == 1

    peer.put({**body, "id": "copy"})
    ambiguous = http.post(f"{base}/Communication", json=body, headers=headers)
    assert "matches 2" in assert_outcome(ambiguous, 412, "duplicate")


def test_delete_then_gone(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.put(patient("p1"))
    peer.put(patient("p2"))
    assert http.delete(f"{base}/Patient/p1", headers=auth).status_code == 204
    assert_outcome(http.get(f"{base}/Patient/p1", headers=auth), 410, "deleted")
    assert ids(http.get(f"{base}/Patient", headers=auth).json()) == ["p2"]
    assert peer.get("Patient", "p1") is None
    peer.delete("Patient", "p2")
    assert_outcome(http.get(f"{base}/Patient/p2", headers=auth), 410, "deleted")
    back = peer.put(patient("p2"))
    assert back["meta"]["versionId"] == "2"  # versions go on across a delete


# --- Bulk Data -------------------------------------------------------------------------------


def _poll(http: httpx.Client, status_url: str, auth: dict[str, str]) -> httpx.Response:
    for _ in range(10):
        response = http.get(status_url, headers=auth)
        if response.status_code != 202:
            return response
    raise AssertionError("export never completed")


def _download(
    http: httpx.Client, manifest: dict[str, Any], auth: dict[str, str]
) -> dict[str, list[bytes]]:
    lines: dict[str, list[bytes]] = {}
    for item in manifest["output"]:
        response = http.get(item["url"], headers={**auth, "Accept": "application/fhir+ndjson"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/fhir+ndjson")
        assert response.content.endswith(b"\n")
        file_lines = response.content.split(b"\n")[:-1]
        assert len(file_lines) == item["count"]
        lines.setdefault(item["type"], []).extend(file_lines)
    return lines


def _practice(peer: FhirPeer) -> None:
    at(peer, T0)
    peer.put(patient("ann"))
    peer.put(patient("bob"))
    peer.put({"resourceType": "Practitioner", "id": "dr1"})
    peer.put(appointment("a1", "2026-11-23T09:00:00Z", "ann"))
    at(peer, T0 + timedelta(hours=1))
    peer.put(appointment("a2", "2026-11-24T09:00:00Z", "bob"))
    coverage = {"resourceType": "Coverage", "id": "c1", "status": "active"}
    peer.put({**coverage, "beneficiary": {"reference": "Patient/bob"}})


def test_bulk_export_round_trip(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    _practice(peer)
    at(peer, T0 + timedelta(hours=2))
    kick = http.get(f"{base}/$export", headers={**auth, **ASYNC})
    assert kick.status_code == 202, kick.text
    status_url = kick.headers["content-location"]
    job_id = status_url.rsplit("/", 1)[1]
    assert status_url == f"{base}/$export-status/{job_id}"
    assert job_id in peer.jobs

    waiting = http.get(status_url, headers=auth)
    assert waiting.status_code == 202
    assert waiting.headers["retry-after"] == "1"
    assert waiting.headers["x-progress"] == "50% complete"
    done = http.get(status_url, headers=auth)
    assert done.status_code == 200
    manifest = done.json()
    assert manifest["transactionTime"] == "2026-11-23T12:00:00.000Z"
    assert manifest["request"] == f"{base}/$export"
    assert manifest["requiresAccessToken"] is True
    assert manifest["error"] == []
    assert {o["type"]: o["count"] for o in manifest["output"]} == {
        "Appointment": 2,
        "Coverage": 1,
        "Patient": 2,
        "Practitioner": 1,
    }
    first = manifest["output"][0]["url"]
    assert first.startswith(f"{base}/$export-file/{job_id}/")
    assert_outcome(http.get(first), 401, "security")  # requiresAccessToken

    lines = _download(http, manifest, auth)
    for resource_type, file_lines in lines.items():
        for line in file_lines:
            fhir_id = json.loads(line)["id"]
            assert line == peer.get_raw(resource_type, fhir_id)  # the stored bytes exactly
    assert [json.loads(x)["id"] for x in lines["Appointment"]] == ["a1", "a2"]

    assert http.delete(status_url, headers=auth).status_code == 202
    assert job_id not in peer.jobs
    assert_outcome(http.get(status_url, headers=auth), 404, "not-found")
    assert_outcome(http.get(first, headers=auth), 404, "not-found")


def test_export_since_type_and_patient_compartment(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.config.export_polls = 0
    _practice(peer)

    def export(path: str, **params: str) -> dict[str, list[bytes]]:
        kick = http.get(f"{base}/{path}", params=params, headers={**auth, **ASYNC})
        assert kick.status_code == 202, kick.text
        done = _poll(http, kick.headers["content-location"], auth)
        assert done.status_code == 200
        return _download(http, done.json(), auth)

    def fhir_ids(lines: dict[str, list[bytes]]) -> dict[str, list[str]]:
        return {t: [json.loads(x)["id"] for x in v] for t, v in lines.items()}

    since = export("$export", _since="2026-11-23T10:30:00Z")
    assert fhir_ids(since) == {"Appointment": ["a2"], "Coverage": ["c1"]}
    typed = export("$export", _type="Patient,Appointment", _outputFormat="ndjson")
    assert fhir_ids(typed) == {"Patient": ["ann", "bob"], "Appointment": ["a1", "a2"]}
    compartment = export("Patient/$export")
    assert "Practitioner" not in compartment
    assert fhir_ids(compartment)["Coverage"] == ["c1"]
    peer.put(
        {"resourceType": "Group", "id": "g1", "member": [{"entity": {"reference": "Patient/bob"}}]}
    )
    group = export("Group/g1/$export")
    assert fhir_ids(group) == {"Patient": ["bob"], "Appointment": ["a2"], "Coverage": ["c1"]}


def test_export_files_split_and_kickoff_errors(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.config.export_file_max_resources = 2
    peer.config.export_polls = 0
    for n in range(5):
        peer.put(patient(f"p{n}"))
    kick = http.get(f"{base}/$export?_type=Patient", headers={**auth, **ASYNC})
    manifest = _poll(http, kick.headers["content-location"], auth).json()
    names = [o["url"].rsplit("/", 1)[1] for o in manifest["output"]]
    assert names == ["Patient-1.ndjson", "Patient-2.ndjson", "Patient-3.ndjson"]
    assert [o["count"] for o in manifest["output"]] == [2, 2, 1]
    assert sum(len(v) for v in _download(http, manifest, auth).values()) == 5

    no_prefer = http.get(f"{base}/$export", headers={**auth, **FHIR_JSON})
    assert "respond-async" in assert_outcome(no_prefer, 400, "invalid")
    bad_format = http.get(f"{base}/$export?_outputFormat=text/csv", headers={**auth, **ASYNC})
    assert_outcome(bad_format, 400, "invalid")
    unsupported = http.get(
        f"{base}/$export?_typeFilter=Patient%3Factive%3Dtrue", headers={**auth, **ASYNC}
    )
    assert "_typeFilter" in assert_outcome(unsupported, 400, "not-supported")
    lenient = {**auth, **ASYNC, "Prefer": "respond-async, handling=lenient"}
    assert http.get(f"{base}/$export?_typeFilter=x", headers=lenient).status_code == 202


def test_failed_export_and_error_file(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.config.export_polls = 0
    peer.put(patient("p1"))
    problem = {
        "resourceType": "OperationOutcome",
        "issue": [
            {"severity": "error", "code": "processing", "diagnostics": "Patient/x unreadable"}
        ],
    }
    peer.export_errors = [problem]
    kick = http.get(f"{base}/$export", headers={**auth, **ASYNC})
    status_url = kick.headers["content-location"]
    manifest = http.get(status_url, headers=auth).json()
    assert len(manifest["error"]) == 1
    assert manifest["error"][0]["type"] == "OperationOutcome"
    errors = http.get(manifest["error"][0]["url"], headers=auth)
    assert [json.loads(x) for x in errors.content.splitlines()] == [problem]

    peer.fail_exports(True)
    failed = http.get(status_url, headers=auth)
    assert failed.status_code == 500
    issue = failed.json()["issue"][0]
    assert (issue["severity"], issue["code"]) == ("error", "exception")
    assert "failed" in issue["diagnostics"]


# --- faults and malformed data ---------------------------------------------------------------


def test_fault_answers_429_with_retry_after_then_recovers(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.faults.add(Fault(method="GET", path_contains="/Appointment", status=429, retry_after=1))
    throttled = http.get(f"{base}/Appointment", headers=auth)
    assert_outcome(throttled, 429, "throttled")
    assert throttled.headers["retry-after"] == "1"
    assert http.get(f"{base}/Appointment", headers=auth).status_code == 200
    logged = [(r.method, r.path, r.status) for r in peer.requests if r.path == "/fhir/Appointment"]
    assert logged == [("GET", "/fhir/Appointment", 429), ("GET", "/fhir/Appointment", 200)]
    assert peer.requests[-1].headers["authorization"] == auth["Authorization"]
    token_call = next(r for r in peer.requests if r.path == "/auth/token")
    assert b"client_assertion=" in token_call.body


def test_fault_delay_makes_a_client_time_out(
    base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.faults.add(Fault(path_contains="/metadata", delay_s=0.5))
    with httpx.Client(timeout=0.1) as impatient, pytest.raises(httpx.ReadTimeout):
        impatient.get(f"{base}/metadata")
    with httpx.Client(timeout=2.0) as patient_client:
        assert patient_client.get(f"{base}/metadata").status_code == 200


def test_raw_malformed_resources_reach_search_pages_and_export_files(
    http: httpx.Client, base: str, peer: FhirPeer, auth: dict[str, str]
) -> None:
    peer.config.export_polls = 0
    peer.put(patient("good"))
    not_fhir = b'{"resourceType":"Patient","id":"odd","birthDate":19}'
    not_json = b'{"resourceType":"Patient","id":"broken",'
    peer.put_raw("Patient", "odd", not_fhir)
    peer.put_raw("Patient", "broken", not_json)

    bundle = http.get(f"{base}/Patient", headers=auth).json()  # still a parseable Bundle
    resources = {e["fullUrl"].rsplit("/", 1)[1]: e["resource"] for e in bundle["entry"]}
    assert resources["odd"] == json.loads(not_fhir)
    assert resources["broken"] == not_json.decode()  # a string where a resource should be
    assert http.get(f"{base}/Patient/broken", headers=auth).content == not_json

    kick = http.get(f"{base}/$export?_type=Patient", headers={**auth, **ASYNC})
    manifest = _poll(http, kick.headers["content-location"], auth).json()
    lines = _download(http, manifest, auth)["Patient"]
    assert not_fhir in lines
    assert not_json in lines


def test_unknown_routes_and_methods_answer_operation_outcomes(
    http: httpx.Client, base: str, auth: dict[str, str]
) -> None:
    assert_outcome(http.get(base.removesuffix("/fhir") + "/nowhere"), 404, "not-found")
    assert_outcome(http.patch(f"{base}/Patient/p1", headers=auth), 405, "not-supported")


# --- loading and the command line ------------------------------------------------------------


def _write_folder(folder: Path) -> None:
    stamped = {
        "resourceType": "Patient",
        "id": "kept",
        "meta": {"lastUpdated": "2026-01-02T03:04:05Z"},
    }
    (folder / "Patient.ndjson").write_bytes(
        json.dumps(stamped, separators=(",", ":")).encode()
        + b"\n"
        + json.dumps({"resourceType": "Patient", "id": "bare"}).encode()
        + b"\n\n"
    )
    (folder / "log.ndjson").write_text('{"exportId":"x","eventId":"kickoff"}\n')


def test_load_ndjson_folder_keeps_bytes_and_fills_missing_meta(
    tmp_path: Path, peer: FhirPeer
) -> None:
    _write_folder(tmp_path)
    at(peer, T0)
    assert peer.load_ndjson_folder(tmp_path) == 2
    assert peer.get_raw("Patient", "kept") == (
        b'{"resourceType":"Patient","id":"kept","meta":{"lastUpdated":"2026-01-02T03:04:05Z"}}'
    )
    bare = peer.get("Patient", "bare")
    assert bare is not None
    assert bare["meta"] == {"versionId": "1", "lastUpdated": "2026-11-23T10:00:00.000Z"}


def test_command_line_serves_a_folder(tmp_path: Path, keys: Keys, http: httpx.Client) -> None:
    _write_folder(tmp_path)
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(keys.jwks))
    command = [
        sys.executable,
        "-m",
        "tests.fhir_peer",
        "--data",
        str(tmp_path),
        "--port",
        "0",
        "--client-id",
        CLIENT,
        "--jwks",
        str(jwks_file),
        "--export-polls",
        "0",
    ]
    root = Path(__file__).resolve().parents[2]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as process:
        try:
            assert process.stdout is not None
            base = process.stdout.readline().strip()
            assert base.startswith("http://127.0.0.1:")
            assert base.endswith("/fhir")
            headers = bearer(http, base, keys)
            bundle = http.get(f"{base}/Patient", headers=headers).json()
            assert sorted(ids(bundle)) == ["bare", "kept"]
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_running_peer_serves_then_stops(http: httpx.Client) -> None:
    with running_peer(FhirPeer()) as base:
        assert http.get(f"{base}/metadata").status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/metadata", timeout=1.0)
