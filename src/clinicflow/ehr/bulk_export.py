"""FHIR Bulk Data Access (v2) `$export`: kick off, wait, stream the files, clean up.

Kick-off asks with `Prefer: respond-async` and gets a status URL (Content-Location). The status
URL answers 202 while the server works (we wait as long as its `Retry-After` says, and report its
`X-Progress`), then 200 with a manifest naming one or more NDJSON files per type and an `error`
list of OperationOutcome files. Each file is streamed line by line into the same ingest path a
folder sync takes; a file that does not require our token is fetched without it (it may live on a
storage host that must never see our bearer token). DELETE on the status URL tells the server it
may drop the files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import orjson

from clinicflow.clock import Clock
from clinicflow.ehr.fhirtime import parse_instant
from clinicflow.ehr.folder import SourceItem, ndjson_items
from clinicflow.ehr.http import (
    FHIR_JSON,
    FHIR_NDJSON,
    FhirHttp,
    outcome_text,
    retry_after_seconds,
)
from clinicflow.errors import EhrError, InputError

log = logging.getLogger(__name__)

EXPORT_OPERATION = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
DEFAULT_POLL_S = 2.0  # when the server gives no Retry-After
MAX_POLL_S = 120.0


class ExportLevel(StrEnum):
    """Whose data an export covers."""

    SYSTEM = "system"  # [base]/$export: everything
    PATIENT = "patient"  # [base]/Patient/$export: every patient's compartment
    GROUP = "group"  # [base]/Group/id/$export: the group's members


@dataclass(frozen=True)
class ExportFile:
    """One file a manifest lists."""

    resource_type: str
    url: str
    count: int | None


@dataclass(frozen=True)
class Manifest:
    """A finished export: when it was taken, its files, and whether they need our token."""

    transaction_time: datetime
    outputs: list[ExportFile]
    errors: list[ExportFile] = field(default_factory=list)
    requires_access_token: bool = True


def export_path(level: ExportLevel, group_id: str | None = None) -> str:
    """The kick-off path for `level`."""
    if level is ExportLevel.GROUP:
        if not group_id:
            raise InputError("A Group export needs the Group's id (--group).")
        return f"Group/{group_id}/$export"
    return "Patient/$export" if level is ExportLevel.PATIENT else "$export"


def kick_off(
    http: FhirHttp,
    level: ExportLevel = ExportLevel.SYSTEM,
    *,
    group_id: str | None = None,
    types: Sequence[str] = (),
    since: datetime | None = None,
) -> str:
    """Start an export; returns the status URL to poll."""
    params: dict[str, str | list[str]] = {"_outputFormat": FHIR_NDJSON}
    if types:
        params["_type"] = ",".join(types)
    if since is not None:
        params["_since"] = since.astimezone(UTC).isoformat(timespec="milliseconds")
    response = http.send(
        "GET",
        export_path(level, group_id),
        params=params,
        headers={"Accept": FHIR_JSON, "Prefer": "respond-async"},
        ok=(202,),
        what=f"start a {level} Bulk Data export",
    )
    status_url = response.headers.get("Content-Location")
    if not status_url:
        raise EhrError("The EHR accepted the export but gave no status URL (Content-Location).")
    return http.url(status_url)


def wait_for_manifest(
    http: FhirHttp,
    status_url: str,
    *,
    clock: Clock,
    timeout_s: float = 6 * 3600,
    sleep: Callable[[float], None] = time.sleep,
    on_progress: Callable[[str], None] | None = None,
) -> Manifest:
    """Poll the status URL until the export is done; EhrError if it failed or took too long."""
    started = time.monotonic()
    while True:
        response = http.send("GET", status_url, ok=(200, 202), what="check the export's status")
        if response.status_code == 200:
            return parse_manifest(response.content)
        progress = response.headers.get("X-Progress", "in progress")
        if on_progress is not None:
            on_progress(progress)
        waited = time.monotonic() - started
        if waited > timeout_s:
            raise EhrError(
                f"The EHR's export is still running after {waited / 60:.0f} minutes "
                f"({progress}); it was left running at {status_url}.",
                retryable=True,
            )
        delay = _poll_delay(response.headers.get("Retry-After"), clock.now())
        log.info("ehr.export.waiting", extra={"progress": progress, "retry_after_s": delay})
        sleep(delay)


def _poll_delay(retry_after: str | None, now: datetime) -> float:
    told = retry_after_seconds(retry_after, now)
    return DEFAULT_POLL_S if told is None else min(max(told, 0.0), MAX_POLL_S)


def parse_manifest(content: bytes) -> Manifest:
    """A completion manifest; EhrError naming the field if it is not one."""
    try:
        body = orjson.loads(content)
    except orjson.JSONDecodeError as exc:
        raise EhrError(f"The export's manifest is not JSON ({exc}).") from exc
    if not isinstance(body, dict):
        raise EhrError("The export's manifest is not a JSON object.")
    try:
        when = parse_instant(body.get("transactionTime"), "transactionTime")
    except InputError as exc:
        raise EhrError(f"The export's manifest: {exc.message}.") from exc
    if when is None:
        raise EhrError("The export's manifest has no transactionTime.")
    return Manifest(
        transaction_time=when,
        outputs=_files(body.get("output"), "output"),
        errors=_files(body.get("error"), "error"),
        requires_access_token=body.get("requiresAccessToken") is not False,
    )


def _files(entries: Any, name: str) -> list[ExportFile]:
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise EhrError(f"The export's manifest: `{name}` is not a list.")
    files = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not entry.get("url") or not entry.get("type"):
            raise EhrError(f"The export's manifest: `{name}[{index}]` has no type or url.")
        count = entry.get("count")
        files.append(
            ExportFile(
                str(entry["type"]), str(entry["url"]), count if isinstance(count, int) else None
            )
        )
    return files


class Downloader:
    """Streams manifest files, with our token only where the manifest says it is needed."""

    def __init__(self, http: FhirHttp, manifest: Manifest) -> None:
        self.http = http
        self.manifest = manifest

    def lines(self, url: str) -> Iterator[bytes]:
        """Lines of one file, streamed."""
        with self.http.lines(url, with_token=self.manifest.requires_access_token) as lines:
            yield from lines

    def items(self) -> Iterator[SourceItem]:
        """Every resource of every output file, labelled `Type file N:LINE`."""
        for number, export_file in enumerate(self.manifest.outputs, start=1):
            label = f"export {export_file.resource_type} file {number}"
            yield from ndjson_items(self.lines(export_file.url), label)

    def error_messages(self) -> Iterator[str]:
        """What the server's error files say went wrong (OperationOutcome per line)."""
        for export_file in self.manifest.errors:
            for line in self.lines(export_file.url):
                if not line.strip():
                    continue
                try:
                    said = outcome_text(orjson.loads(line))
                except orjson.JSONDecodeError:
                    said = None
                yield said or line[:200].decode("utf-8", "replace")


def delete_job(http: FhirHttp, status_url: str) -> None:
    """Tell the server we are done with the files (a failure here is logged, not raised)."""
    try:
        http.send("DELETE", status_url, ok=(200, 202, 204, 404), what="delete the export job")
    except EhrError as exc:
        log.warning("ehr.export.delete_failed", extra={"error": exc.message})
