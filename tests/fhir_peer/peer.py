"""FhirPeer: the test EHR's state (resources, tokens, export jobs, faults, request log) and the
Python API tests use to arrange it. The HTTP side is in app.py; running it in server.py.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from tests.fhir_peer.auth import JwksSource, TokenService
from tests.fhir_peer.faults import FaultBook
from tests.fhir_peer.fhirtime import to_micros, utc_now
from tests.fhir_peer.middleware import RequestLog
from tests.fhir_peer.store import Store, ndjson_files

if TYPE_CHECKING:
    from starlette.types import ASGIApp
    from tests.fhir_peer.bulk import ExportJob

# Types the CapabilityStatement always lists (and the peer accepts) even while it holds none:
# what clinicflow reads and writes back. Any type the store holds is served as well.
DEFAULT_TYPES = (
    "Appointment",
    "Patient",
    "Slot",
    "Schedule",
    "Practitioner",
    "PractitionerRole",
    "Location",
    "Organization",
    "Communication",
    "Coverage",
    "Task",
    "DocumentReference",
    "Encounter",
    "Group",  # for Group/{id}/$export
)


@dataclass
class PeerConfig:
    """How the peer behaves; every field has a default fit for fast tests."""

    # client_id -> its registered public keys: a JWKS dict {"keys": [...]} or a JWKS URL.
    clients: Mapping[str, JwksSource] = field(default_factory=dict)
    token_lifetime_s: int = 300  # expires_in of issued access tokens
    export_polls: int = 1  # status polls answered 202 (in progress) before the manifest
    retry_after_s: int = 1  # Retry-After on in-progress status responses
    max_page_size: int = 500  # _count is capped at this
    default_page_size: int = 100  # page size without _count
    export_file_max_resources: int = 100_000  # one type's output splits into files beyond this
    # As some EHRs do: search and export leave out what is entered-in-error (a read still shows
    # it), so a client that only searches never learns of it.
    hide_entered_in_error: bool = False


class FhirPeer:
    """A FHIR R4 server with SMART Backend Services auth and Bulk Data export, for tests."""

    def __init__(self, config: PeerConfig | None = None) -> None:
        self.config = config or PeerConfig()
        self.store = Store()
        self.faults = FaultBook()
        self.requests: list[RequestLog] = []
        self.jobs: dict[str, ExportJob] = {}
        self.jobs_lock = threading.Lock()
        # OperationOutcomes listed as the "error" file of export manifests served from now on.
        self.export_errors: list[dict[str, Any]] = []
        # The peer's clock for meta.lastUpdated and export transactionTime; tests may set it.
        self.now: Callable[[], datetime] = utc_now
        # The clock for client assertion exp/nbf and access token expiry. Separate from `now`
        # so a test can move resource timestamps without breaking sign-in; set it too when the
        # client signs its assertions with a fake clock.
        self.wall_clock: Callable[[], datetime] = utc_now
        if not isinstance(self.config.clients, dict):
            self.config.clients = dict(self.config.clients)
        # Settings are read at each use, so a test may change peer.config while it runs.
        self.auth = TokenService(
            self.config.clients,
            lambda: self.config.token_lifetime_s,
            lambda: self.wall_clock(),
        )
        self._fail_exports = False
        self._log_lock = threading.Lock()
        self._app: ASGIApp | None = None

    # --- the HTTP application -------------------------------------------------------------

    @property
    def app(self) -> ASGIApp:
        """The ASGI application (built once)."""
        if self._app is None:
            from tests.fhir_peer.app import build_app  # app imports peer for typing

            self._app = build_app(self)
        return self._app

    def record_request(self, entry: RequestLog) -> None:
        """Append to `requests` (called by the middleware for every request)."""
        with self._log_lock:
            self.requests.append(entry)

    # --- arranging data -------------------------------------------------------------------

    def now_us(self) -> int:
        """`now()` in microseconds, truncated to milliseconds like the instants it serves."""
        micros = to_micros(self.now())
        return micros - micros % 1000

    def load_ndjson_folder(self, path: Path | str) -> int:
        """Load every *.ndjson file in `path` (not log.ndjson); returns how many resources."""
        return self.store.load_ndjson(ndjson_files(Path(path)), self.now_us())

    def put(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace a resource (a new id if it has none); returns it as stored."""
        body = dict(resource)
        if not isinstance(body.get("resourceType"), str):
            raise ValueError("resource has no resourceType")
        if not isinstance(body.get("id"), str):
            body["id"] = str(uuid.uuid4())
        record, _ = self.store.write(body, self.now_us())
        parsed: dict[str, Any] = orjson.loads(record.raw)
        return parsed

    def put_raw(self, resource_type: str, fhir_id: str, raw: bytes) -> None:
        """Store bytes as they are (malformed FHIR, even invalid JSON), lastUpdated = now.

        Searches put invalid JSON into the Bundle as a JSON string in `entry.resource`;
        export files and reads carry the bytes unchanged.
        """
        self.store.write_raw(resource_type, fhir_id, raw, self.now_us())

    def delete(self, resource_type: str, fhir_id: str) -> bool:
        """Delete; later reads answer 410 Gone. True if there was a live resource."""
        return self.store.delete(resource_type, fhir_id)

    def get(self, resource_type: str, fhir_id: str) -> dict[str, Any] | None:
        """The stored resource parsed, or None if unknown or deleted.

        Raises ValueError for put_raw bytes that are not a JSON object (use get_raw).
        """
        record = self.store.get(resource_type, fhir_id)
        if record is None:
            return None
        parsed = orjson.loads(record.raw) if record.is_json else None
        if not isinstance(parsed, dict):
            raise ValueError(f"{resource_type}/{fhir_id} is stored as bytes that are not JSON")
        return parsed

    def get_raw(self, resource_type: str, fhir_id: str) -> bytes | None:
        """The stored bytes exactly as served, or None if unknown or deleted."""
        record = self.store.get(resource_type, fhir_id)
        return None if record is None else record.raw

    def supported_types(self) -> list[str]:
        """The types the peer serves: the defaults plus every type it holds."""
        return sorted(set(DEFAULT_TYPES) | set(self.store.types()))

    # --- steering behaviour ---------------------------------------------------------------

    def fail_exports(self, failing: bool = True) -> None:
        """While set, export status URLs answer 500 with an OperationOutcome."""
        self._fail_exports = failing

    @property
    def exports_failing(self) -> bool:
        """Whether fail_exports(True) is in force."""
        return self._fail_exports

    def revoke_tokens(self) -> None:
        """Every access token issued so far becomes invalid (401)."""
        self.auth.revoke_all()

    def register_client(self, client_id: str, jwks: JwksSource) -> None:
        """Register (or replace) a client's public JWKS or JWKS URL."""
        self.auth.clients[client_id] = jwks

    @property
    def token_requests(self) -> int:
        """How many token exchanges succeeded."""
        return self.auth.successes

    def clear_requests(self) -> None:
        """Forget the request log (handy between phases of a test)."""
        with self._log_lock:
            self.requests.clear()
