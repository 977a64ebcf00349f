"""FHIR Bulk Data Access v2: kick-off, status polling, manifest, file download, job delete.

Kick-off (`$export` at system, Patient or Group level) snapshots the matching Records at once
(transactionTime = kick-off instant); Records are immutable, so the job keeps exactly the
versions that existed then, at the cost of one list of references. Status polls answer 202
`export_polls` times, then the manifest. Files stream the stored bytes line by line and are
never built whole in memory.

URL shapes (absolute, on the host:port the client used):
  status  {base}/$export-status/{job_id}
  files   {base}/$export-file/{job_id}/{Type}-{n}.ndjson   (n = 1, 2, ... per type)
  errors  {base}/$export-file/{job_id}/OperationOutcome-error.ndjson
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from tests.fhir_peer.auth import Grant
from tests.fhir_peer.context import bearer, fhir_base, peer_of
from tests.fhir_peer.fhirtime import TimeValueError, format_instant, parse_instant
from tests.fhir_peer.outcome import (
    NDJSON,
    FhirError,
    fhir_response,
    invalid,
    not_found,
    not_supported,
    outcome,
)
from tests.fhir_peer.records import Record, patient_reference_id
from tests.fhir_peer.scopes import allows
from tests.fhir_peer.search import HIDDEN_STATUSES
from tests.fhir_peer.store import Store

OUTPUT_FORMATS = frozenset({"application/fhir+ndjson", "application/ndjson", "ndjson"})
_KNOWN_PARAMS = frozenset({"_outputFormat", "_since", "_type"})
_NDJSON_ACCEPT = ("application/fhir+ndjson", "application/ndjson", "*/*")
_KICKOFF_ACCEPT = ("application/fhir+json", "application/json", "*/*")
_CHUNK_BYTES = 256 * 1024


@dataclass
class ExportFile:
    """One output file: its name in the file URL, its type, and the lines it will stream."""

    name: str
    resource_type: str
    records: Sequence[Record] = ()
    lines: Sequence[bytes] = ()  # for the error file (OperationOutcomes, not Records)

    @property
    def count(self) -> int:
        """How many resources the file holds."""
        return len(self.records) or len(self.lines)


@dataclass
class ExportJob:
    """An export: the kick-off URL, its transactionTime, its files and how often it was polled."""

    id: str
    request_url: str
    transaction_time: str
    output: list[ExportFile] = field(default_factory=list)
    error: list[ExportFile] = field(default_factory=list)
    polls: int = 0
    completed: bool = False  # the manifest has been served (its files are then fixed)

    def file(self, name: str) -> ExportFile | None:
        """An output or error file by name."""
        return next((f for f in [*self.output, *self.error] if f.name == name), None)


def _prefer_tokens(request: Request) -> set[str]:
    return {part.strip().lower() for part in request.headers.get("prefer", "").split(",")}


def _accepts(request: Request, allowed: tuple[str, ...]) -> bool:
    accept = request.headers.get("accept")
    if accept is None:
        return True
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return bool(offered & set(allowed))


def _check_params(request: Request) -> None:
    lenient = "handling=lenient" in _prefer_tokens(request)
    unknown = sorted({k for k in request.query_params if k not in _KNOWN_PARAMS})
    if unknown and not lenient:
        # Bulk Data v2: a server SHALL reject parameters it does not support unless the
        # client asked for lenient handling.
        raise not_supported(
            f"$export parameter(s) {', '.join(unknown)} not supported "
            "(send Prefer: handling=lenient to have them ignored)"
        )


def _requested_types(request: Request, grant: Grant, held: Iterable[str]) -> list[str]:
    named = [
        name.strip()
        for value in request.query_params.getlist("_type")
        for name in value.split(",")
        if name.strip()
    ]
    if not named:
        # Everything the token may read; types it may not are left out, not refused.
        return [t for t in held if allows(grant.scopes, t, "r")]
    refused = [t for t in named if not allows(grant.scopes, t, "r")]
    if refused:
        raise FhirError(
            403, "forbidden", f"the access token's scopes do not allow reading {', '.join(refused)}"
        )
    return list(dict.fromkeys(named))


def _since(request: Request) -> int | None:
    value = request.query_params.get("_since")
    if value is None:
        return None
    try:
        return parse_instant(value, "_since")
    except TimeValueError as exc:
        raise invalid(str(exc)) from None


def _group_members(store: Store, group_id: str) -> frozenset[str] | None:
    """Patient ids of a stored Group's members, or None (all patients) without one."""
    record = store.get("Group", group_id)
    if record is None or not record.is_json:
        return None
    group = orjson.loads(record.raw)
    members = group.get("member") if isinstance(group, dict) else None
    if not isinstance(members, list) or not members:
        return None
    ids: set[str] = set()
    for member in members:
        entity = member.get("entity") if isinstance(member, dict) else None
        patient = patient_reference_id(entity)
        if patient is not None:
            ids.add(patient)
    return frozenset(ids)


def _in_compartment(record: Record, patients: frozenset[str] | None) -> bool:
    """Whether a record belongs to the Patient compartment (of `patients`, or of anyone)."""
    if record.resource_type == "Patient":
        return patients is None or record.id in patients
    if patients is None:
        return bool(record.patients)
    return not patients.isdisjoint(record.patients)


def _snapshot(
    store: Store,
    types: list[str],
    since: int | None,
    patient_level: bool,
    patients: frozenset[str] | None,
    hidden: frozenset[str] = frozenset(),
) -> dict[str, list[Record]]:
    """The records each type contributes, in (lastUpdated, id) order, taken under the lock."""
    taken: dict[str, list[Record]] = {}
    with store.lock:
        for resource_type in types:
            index = store.index(resource_type)
            if index is None:
                continue
            chosen = [
                record
                for record in index.records()
                if (since is None or record.last_updated > since)
                and (not patient_level or _in_compartment(record, patients))
                and record.status not in hidden
            ]
            if chosen:
                taken[resource_type] = chosen
    return taken


async def kickoff_system(request: Request) -> Response:
    """GET {base}/$export: every type the token may read."""
    return await _kickoff(request, patient_level=False)


async def kickoff_patient(request: Request) -> Response:
    """GET {base}/Patient/$export: the Patient compartment of every patient."""
    return await _kickoff(request, patient_level=True)


async def kickoff_group(request: Request) -> Response:
    """GET {base}/Group/{group_id}/$export: the compartments of the Group's member patients."""
    return await _kickoff(request, patient_level=True)


async def _kickoff(request: Request, patient_level: bool) -> Response:
    """Start an export job: 202 with Content-Location = the absolute status URL."""
    grant = bearer(request)
    peer = peer_of(request)
    if "respond-async" not in _prefer_tokens(request):
        raise invalid("$export requires the header Prefer: respond-async")
    if not _accepts(request, _KICKOFF_ACCEPT):
        raise invalid("$export requires Accept: application/fhir+json")
    _check_params(request)
    output_format = request.query_params.get("_outputFormat", "application/fhir+ndjson")
    if output_format not in OUTPUT_FORMATS:
        raise invalid(f"_outputFormat {output_format!r} is not supported; use ndjson")
    since = _since(request)
    group_id = request.path_params.get("group_id")
    patients = _group_members(peer.store, group_id) if group_id is not None else None
    types = _requested_types(request, grant, peer.store.types())
    transaction_us = peer.now_us()
    hidden = HIDDEN_STATUSES if peer.config.hide_entered_in_error else frozenset()
    taken = _snapshot(peer.store, types, since, patient_level, patients, hidden)
    job = ExportJob(uuid.uuid4().hex, str(request.url), format_instant(transaction_us))
    size = max(1, peer.config.export_file_max_resources)
    for resource_type, records in taken.items():
        for part, start in enumerate(range(0, len(records), size), start=1):
            chunk = records[start : start + size]
            job.output.append(ExportFile(f"{resource_type}-{part}.ndjson", resource_type, chunk))
    with peer.jobs_lock:
        peer.jobs[job.id] = job
    status_url = f"{fhir_base(request)}/$export-status/{job.id}"
    body = outcome("information", "informational", f"export accepted; poll {status_url}")
    return fhir_response(body, 202, {"Content-Location": status_url})


def _job(request: Request) -> ExportJob:
    peer = peer_of(request)
    job_id = request.path_params["job_id"]
    with peer.jobs_lock:
        job = peer.jobs.get(job_id)
    if job is None:
        raise not_found(f"export job {job_id} is not known (finished and deleted, or never made)")
    return job


def _manifest(request: Request, job: ExportJob) -> dict[str, Any]:
    files = f"{fhir_base(request)}/$export-file/{job.id}"
    return {
        "transactionTime": job.transaction_time,
        "request": job.request_url,
        "requiresAccessToken": True,
        "output": [
            {"type": f.resource_type, "url": f"{files}/{f.name}", "count": f.count}
            for f in job.output
        ],
        "error": [{"type": f.resource_type, "url": f"{files}/{f.name}"} for f in job.error],
    }


async def status(request: Request) -> Response:
    """GET the status URL: 202 in progress (X-Progress, Retry-After), 200 manifest, or 500."""
    bearer(request)
    peer = peer_of(request)
    job = _job(request)
    if peer.exports_failing:
        body = outcome(
            "error", "exception", f"export {job.id} failed: the server could not finish it"
        )
        return fhir_response(body, 500)
    polls_wanted = peer.config.export_polls
    with peer.jobs_lock:
        in_progress = job.polls < polls_wanted
        if in_progress:
            job.polls += 1
            percent = job.polls * 100 // (polls_wanted + 1)
        elif not job.completed:
            # Errors are taken when the job completes, so a test may set export_errors
            # before the kick-off or while the client is still polling.
            job.completed = True
            if peer.export_errors:
                lines = [orjson.dumps(item) for item in peer.export_errors]
                error_file = ExportFile(
                    "OperationOutcome-error.ndjson", "OperationOutcome", lines=lines
                )
                job.error.append(error_file)
    if in_progress:
        headers = {
            "X-Progress": f"{percent}% complete",
            "Retry-After": str(peer.config.retry_after_s),
        }
        return Response(status_code=202, headers=headers)
    return fhir_response(_manifest(request, job), 200, media_type="application/json")


async def cancel(request: Request) -> Response:
    """DELETE the status URL: 202, and the job and its files are gone (later 404)."""
    bearer(request)
    peer = peer_of(request)
    job = _job(request)
    with peer.jobs_lock:
        peer.jobs.pop(job.id, None)
    body = outcome("information", "informational", f"export {job.id} deleted")
    return fhir_response(body, 202)


async def _stream(export_file: ExportFile) -> AsyncIterator[bytes]:
    """The file's lines in chunks of about 256 KB, yielding to the event loop between them."""
    lines: Iterable[bytes] = (
        (record.raw for record in export_file.records) if export_file.records else export_file.lines
    )
    chunk: list[bytes] = []
    size = 0
    for line in lines:
        chunk.append(line)
        chunk.append(b"\n")
        size += len(line) + 1
        if size >= _CHUNK_BYTES:
            yield b"".join(chunk)
            chunk, size = [], 0
            await asyncio.sleep(0)  # let other requests (status polls, searches) in
    if chunk:
        yield b"".join(chunk)


async def download(request: Request) -> Response:
    """GET a file URL (requiresAccessToken): NDJSON, one stored resource per line."""
    bearer(request)
    job = _job(request)
    export_file = job.file(request.path_params["name"])
    if export_file is None:
        raise not_found(f"export {job.id} has no file {request.path_params['name']}")
    if not _accepts(request, _NDJSON_ACCEPT):
        raise FhirError(406, "not-supported", "export files are application/fhir+ndjson only")
    return StreamingResponse(_stream(export_file), media_type=NDJSON)
