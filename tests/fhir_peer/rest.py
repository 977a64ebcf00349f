"""FHIR R4 RESTful interactions: search, read, vread, update, create, delete.

Versioning follows FHIR R4 http.html: every write bumps meta.versionId and meta.lastUpdated;
reads and writes answer `ETag: W/"<versionId>"`; an update with `If-Match` on a stale version
is 412 (§3.1.0.5, managing resource contention); `If-None-Exist` makes a create conditional
(§3.1.0.8.1): one match answers 200 with it, several answer 412.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from tests.fhir_peer.context import authorize, fhir_base, peer_of
from tests.fhir_peer.fhirtime import from_micros
from tests.fhir_peer.outcome import FhirError, fhir_response, invalid, not_found, not_supported
from tests.fhir_peer.records import Record
from tests.fhir_peer.search import HIDDEN_STATUSES, bundle_bytes, parse_query, run_search

_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')
_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")  # FHIR R4 id datatype
_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


def _headers(request: Request, record: Record) -> dict[str, str]:
    location = f"{fhir_base(request)}/{record.resource_type}/{record.id}/_history/{record.version}"
    return {
        "ETag": f'W/"{record.version}"',
        "Last-Modified": format_datetime(from_micros(record.last_updated), usegmt=True),
        "Location": location,
    }


def _gone_or_missing(request: Request, resource_type: str, fhir_id: str) -> FhirError:
    if peer_of(request).store.deleted_version(resource_type, fhir_id) is not None:
        return FhirError(410, "deleted", f"{resource_type}/{fhir_id} has been deleted")
    return not_found(f"{resource_type}/{fhir_id} is not known")


async def search(request: Request) -> Response:
    """GET /fhir/{type}?... and POST /fhir/{type}/_search (form body): a searchset Bundle."""
    resource_type = request.path_params["type"]
    authorize(request, resource_type, "s")
    peer = peer_of(request)
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        items += parse_qsl((await request.body()).decode(), keep_blank_values=True)
    query = parse_query(
        resource_type, items, peer.config.default_page_size, peer.config.max_page_size
    )
    if peer.config.hide_entered_in_error:
        query.hidden_statuses = HIDDEN_STATUSES
    page = run_search(peer.store, query)
    body = bundle_bytes(fhir_base(request), query, page, str(uuid.uuid4()), peer.now_us())
    return fhir_response(body)


async def read(request: Request) -> Response:
    """GET /fhir/{type}/{id}: the resource with ETag and Last-Modified; 404 or 410."""
    resource_type, fhir_id = request.path_params["type"], request.path_params["id"]
    authorize(request, resource_type, "r")
    record = peer_of(request).store.get(resource_type, fhir_id)
    if record is None:
        raise _gone_or_missing(request, resource_type, fhir_id)
    headers = _headers(request, record)
    del headers["Location"]
    if request.headers.get("if-none-match") == headers["ETag"]:
        return Response(status_code=304, headers=headers)
    return fhir_response(record.raw, 200, headers)


async def vread(request: Request) -> Response:
    """GET /fhir/{type}/{id}/_history/{vid}: the current version only (no history is kept)."""
    resource_type, fhir_id = request.path_params["type"], request.path_params["id"]
    authorize(request, resource_type, "r")
    record = peer_of(request).store.get(resource_type, fhir_id)
    if record is None:
        raise _gone_or_missing(request, resource_type, fhir_id)
    if request.path_params["vid"] != str(record.version):
        raise not_found(
            f"{resource_type}/{fhir_id} version {request.path_params['vid']} is not kept "
            f"(current is {record.version}; this server keeps no history)"
        )
    headers = _headers(request, record)
    del headers["Location"]
    return fhir_response(record.raw, 200, headers)


async def _body(request: Request, resource_type: str) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and content_type not in _JSON_TYPES:
        raise FhirError(415, "not-supported", f"Content-Type {content_type} is not FHIR JSON")
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise invalid(f"request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise invalid("request body must be a JSON object (a FHIR resource)")
    if body.get("resourceType") != resource_type:
        raise invalid(
            f"resourceType {body.get('resourceType')!r} in the body does not match "
            f"the URL's {resource_type}"
        )
    return body


def _write_response(request: Request, record: Record, status: int) -> Response:
    headers = _headers(request, record)
    if "return=minimal" in request.headers.get("prefer", ""):
        return Response(status_code=status, headers=headers)
    return fhir_response(record.raw, status, headers)


async def update(request: Request) -> Response:
    """PUT /fhir/{type}/{id}: replace (or create) it; If-Match makes it conditional (412)."""
    resource_type, fhir_id = request.path_params["type"], request.path_params["id"]
    authorize(request, resource_type, "u")
    body = await _body(request, resource_type)
    if "id" not in body:
        raise invalid("the resource has no id; an update must carry the id in the URL")
    if body["id"] != fhir_id:
        raise invalid(f"id {body['id']!r} in the body does not match the URL's {fhir_id!r}")
    if not _ID.match(fhir_id):
        raise invalid(f"{fhir_id!r} is not a valid FHIR id")
    if_match = request.headers.get("if-match")
    wanted: int | None = None
    if if_match is not None:
        match = _ETAG.match(if_match.strip())
        if match is None:
            raise invalid(f'If-Match {if_match!r} is not an ETag like W/"3"')
        wanted = int(match.group(1))
    peer = peer_of(request)
    with peer.store.lock:  # the version check and the write are one step
        current = peer.store.get(resource_type, fhir_id)
        if wanted is not None and current is None:
            raise FhirError(
                412,
                "conflict",
                f'If-Match W/"{wanted}" but {resource_type}/{fhir_id} does not exist',
            )
        if wanted is not None and current is not None and current.version != wanted:
            raise FhirError(
                412,
                "conflict",
                f'version conflict: If-Match W/"{wanted}" but {resource_type}/{fhir_id} is at '
                f'W/"{current.version}"',
            )
        record, created = peer.store.write(body, peer.now_us())
    return _write_response(request, record, 201 if created else 200)


async def create(request: Request) -> Response:
    """POST /fhir/{type}: a new resource with a server id; If-None-Exist makes it conditional."""
    resource_type = request.path_params["type"]
    authorize(request, resource_type, "c")
    body = await _body(request, resource_type)
    condition = request.headers.get("if-none-exist")
    tokens = _identifier_tokens(condition) if condition is not None else []
    peer = peer_of(request)
    with peer.store.lock:  # look-up and create are one step, as conditional create requires
        if tokens:
            existing = _matching(peer.store.find_by_identifier, resource_type, tokens)
            if len(existing) > 1:
                raise FhirError(
                    412,
                    "duplicate",
                    f"If-None-Exist {condition!r} matches {len(existing)} {resource_type} "
                    "resources; it must match at most one",
                )
            if existing:
                return _write_response(request, existing[0], 200)
        body["id"] = str(uuid.uuid4())  # the server assigns the id of a create
        record, _ = peer.store.write(body, peer.now_us())
    return _write_response(request, record, 201)


def _identifier_tokens(condition: str) -> list[str]:
    pairs = parse_qsl(condition.lstrip("?"), keep_blank_values=True)
    if not pairs:
        raise invalid(f"If-None-Exist {condition!r} holds no search parameters")
    unsupported = sorted({name for name, _ in pairs if name != "identifier"})
    if unsupported:
        raise not_supported(
            f"If-None-Exist supports only identifier=system|value, not {', '.join(unsupported)}"
        )
    return [value for _, value in pairs]


def _matching(
    find: Callable[[str, str], list[Record]], resource_type: str, tokens: list[str]
) -> list[Record]:
    """Resources matching every identifier token (repeated parameters are ANDed)."""
    found: dict[str, Record] | None = None
    for token in tokens:
        hits = {record.id: record for record in find(resource_type, token)}
        found = hits if found is None else {k: v for k, v in found.items() if k in hits}
    return list((found or {}).values())


async def delete(request: Request) -> Response:
    """DELETE /fhir/{type}/{id}: 204; again on an already deleted one; 404 if never known."""
    resource_type, fhir_id = request.path_params["type"], request.path_params["id"]
    authorize(request, resource_type, "d")
    store = peer_of(request).store
    if (
        not store.delete(resource_type, fhir_id)
        and store.deleted_version(resource_type, fhir_id) is None
    ):
        raise not_found(f"{resource_type}/{fhir_id} is not known")
    return Response(status_code=204)
