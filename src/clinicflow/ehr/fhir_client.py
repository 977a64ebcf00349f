"""The FHIR R4 REST interactions clinicflow uses: capabilities, paged search, read, update, create.

Search pages come back as `SourceItem`s, the same shape a folder sync reads, so a malformed
resource in a page is rejected alone (with where it was: type, page, entry) and the page goes on.
Writes carry the version we read as `If-Match`, so a 412 tells us someone changed the resource in
the EHR meanwhile, and creates can be made conditional on an identifier so a retry finds the
first copy instead of making a second.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from clinicflow.ehr.folder import SourceItem
from clinicflow.ehr.http import FhirHttp, RetryPolicy
from clinicflow.ehr.signing import load_key
from clinicflow.ehr.smart import DEFAULT_SCOPES, SmartAuth, SmartClient
from clinicflow.errors import ConfigError, EhrError
from clinicflow.settings import Settings


@dataclass(frozen=True)
class Versioned:
    """A resource as the EHR holds it, with the ETag to send back as If-Match."""

    resource: dict[str, Any]
    etag: str | None


@dataclass(frozen=True)
class SearchPage:
    """One page of a search: its items (resources or why an entry was refused) and link."""

    number: int
    items: list[SourceItem]
    total: int | None


class FhirClient:
    """The EHR's FHIR API as clinicflow uses it."""

    def __init__(self, http: FhirHttp) -> None:
        self.http = http

    @property
    def base_url(self) -> str:
        """The FHIR base this client talks to."""
        return self.http.base_url

    def close(self) -> None:
        """Close connections (and the token endpoint's, if SMART is on)."""
        auth = self.http.client.auth
        if isinstance(auth, SmartAuth):
            auth.close()
        self.http.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def capability(self) -> dict[str, Any]:
        """The server's CapabilityStatement (`GET [base]/metadata`)."""
        return self.http.get_json("metadata")

    def smart_configuration(self) -> dict[str, Any]:
        """`.well-known/smart-configuration` (auth, scopes and algorithms the EHR supports)."""
        return self.http.get_json(".well-known/smart-configuration")

    def search(
        self, resource_type: str, params: Mapping[str, str | list[str]] | None = None
    ) -> Iterator[SearchPage]:
        """Every page of a search, following `Bundle.link[next]` until there is none."""
        url: str | None = resource_type
        query: Mapping[str, str | list[str]] | None = params
        number = 0
        while url is not None:
            number += 1
            bundle = self.http.get_json(url, query)
            query = None  # a next link carries the whole query
            if bundle.get("resourceType") != "Bundle":
                raise EhrError(
                    f"Search {resource_type} page {number}: the EHR answered with a "
                    f"{bundle.get('resourceType', 'non-FHIR document')}, not a Bundle."
                )
            label = f"{resource_type} search page {number}"
            yield SearchPage(number, list(search_items(bundle, label)), bundle.get("total"))
            url = next_link(bundle)

    def read(self, resource_type: str, fhir_id: str) -> Versioned:
        """`GET [base]/Type/id` with its ETag."""
        label = f"read {resource_type}/{fhir_id}"
        response = self.http.send("GET", f"{resource_type}/{fhir_id}", ok=(200,), what=label)
        return _versioned(response, label)

    def update(self, resource: Mapping[str, Any], *, if_match: str | None) -> Versioned:
        """`PUT [base]/Type/id`, conditional on the version read (412 raises EhrConflictError)."""
        rtype, rid = resource["resourceType"], resource["id"]
        label = f"update {rtype}/{rid}"
        headers = {"If-Match": if_match} if if_match else {}
        response = self.http.send(
            "PUT", f"{rtype}/{rid}", json_body=resource, headers=headers, what=label
        )
        return _versioned(response, label)

    def create(self, resource: Mapping[str, Any], *, if_none_exist: str | None = None) -> Versioned:
        """`POST [base]/Type`; with `if_none_exist` (e.g. `identifier=sys|val`) at most once."""
        rtype = resource["resourceType"]
        label = f"create {rtype}"
        headers = {"If-None-Exist": if_none_exist} if if_none_exist else {}
        headers["Prefer"] = "return=representation"
        response = self.http.send("POST", rtype, json_body=resource, headers=headers, what=label)
        return _versioned(response, label)


def search_items(bundle: Mapping[str, Any], label: str) -> Iterator[SourceItem]:
    """The resources of a searchset Bundle (matches and includes), each checked on its own."""
    for number, entry in enumerate(bundle.get("entry") or (), start=1):
        where = f"{label} entry {number}"
        if not isinstance(entry, dict):
            yield SourceItem(where, None, "entry is not an object")
            continue
        if (entry.get("search") or {}).get("mode") == "outcome":
            continue  # the server's remarks about the search, not data
        resource = entry.get("resource")
        if not isinstance(resource, dict):
            yield SourceItem(where, None, "entry has no resource object")
            continue
        yield SourceItem(where, resource)


def next_link(bundle: Mapping[str, Any]) -> str | None:
    """`Bundle.link` with relation `next`, if any."""
    for link in bundle.get("link") or ():
        if isinstance(link, dict) and link.get("relation") == "next" and link.get("url"):
            return str(link["url"])
    return None


def _versioned(response: httpx.Response, label: str) -> Versioned:
    try:
        body = orjson.loads(response.content) if response.content else {}
    except orjson.JSONDecodeError as exc:
        raise EhrError(f"{label}: the EHR's answer is not JSON ({exc}).") from exc
    if not isinstance(body, dict):
        raise EhrError(f"{label}: the EHR's answer is not a resource.")
    etag = response.headers.get("ETag")
    if etag is None and isinstance(body.get("meta"), dict) and body["meta"].get("versionId"):
        etag = f'W/"{body["meta"]["versionId"]}"'
    return Versioned(body, etag)


def client_from_settings(
    settings: Settings, *, transport: httpx.BaseTransport | None = None
) -> FhirClient:
    """The FHIR client the settings describe; ConfigError names what is missing."""
    base = settings.fhir_base_url
    if not base:
        raise ConfigError(
            "No EHR is connected: set CLINICFLOW_FHIR_BASE_URL to the EHR's FHIR R4 base URL."
        )
    auth: httpx.Auth | None = None
    if settings.fhir_client_id:
        key = load_key(settings.resolved_fhir_key_path)
        scopes = settings.fhir_scopes or DEFAULT_SCOPES
        auth = SmartAuth(
            base, SmartClient(settings.fhir_client_id, key, scopes), transport=transport
        )
    retry = RetryPolicy(attempts=settings.fhir_retry_attempts, max_delay_s=settings.fhir_max_wait_s)
    http = FhirHttp(base, auth=auth, transport=transport, retry=retry)
    return FhirClient(http)
