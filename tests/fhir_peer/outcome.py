"""OperationOutcome bodies and the error type every handler raises to answer with one.

FHIR R4 (http.html §3.1.0.4): errors SHOULD carry an OperationOutcome; the peer always does,
so a client's error path is exercised against the same shape a real server sends.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

FHIR_JSON = "application/fhir+json; charset=utf-8"
NDJSON = "application/fhir+ndjson"


def outcome(severity: str, code: str, diagnostics: str) -> dict[str, Any]:
    """A one-issue OperationOutcome."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }


def fhir_response(
    body: Mapping[str, Any] | bytes,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    media_type: str = FHIR_JSON,
) -> Response:
    """A JSON response; `bytes` are sent as they are (stored resources are never re-encoded)."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return Response(content, status_code=status, headers=dict(headers or {}), media_type=media_type)


class FhirError(Exception):
    """An error answered as `status` with an OperationOutcome (issue `code`, `diagnostics`)."""

    def __init__(
        self,
        status: int,
        code: str,
        diagnostics: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """The HTTP answer for this error."""
        body = outcome("error", self.code, self.diagnostics)
        return fhir_response(body, self.status, self.headers)


def not_found(what: str) -> FhirError:
    """404 with issue code not-found."""
    return FhirError(404, "not-found", what)


def invalid(what: str) -> FhirError:
    """400 with issue code invalid: the request itself is wrong."""
    return FhirError(400, "invalid", what)


def not_supported(what: str) -> FhirError:
    """400 with issue code not-supported: valid FHIR the peer does not implement."""
    return FhirError(400, "not-supported", what)
