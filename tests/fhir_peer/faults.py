"""Fault injection: make the next matching requests fail (429, 503, 500...) or answer slowly.

Faults are checked before routing, so they hit any endpoint the same way: the token endpoint,
searches, export status polls, file downloads. A client's retry, back-off and timeout paths are
exercised against a real HTTP exchange, not a mocked transport.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.responses import Response
from tests.fhir_peer.outcome import FHIR_JSON, outcome

_ISSUE_CODES = {429: "throttled", 503: "transient", 500: "exception", 504: "timeout"}


@dataclass
class Fault:
    """The next `times` requests matching `method` and `path_contains` get `status`.

    `method` "*" matches any method. `path_contains` is searched in the path plus the query
    string ("/fhir/Appointment?_page_token=..."), so a fault can target one page. With
    `retry_after` set the answer carries `Retry-After: <seconds>`. `body` replaces the default
    OperationOutcome (a dict is sent as JSON, str/bytes as they are). With `delay_s` > 0 the
    request is instead held that long and then answered normally (for client timeouts).
    `times` None means every matching request, until `FaultBook.clear()`.
    """

    method: str = "*"
    path_contains: str = ""
    status: int = 503
    retry_after: int | None = None
    times: int | None = 1
    delay_s: float = 0.0
    body: Mapping[str, Any] | str | bytes | None = None

    def matches(self, method: str, target: str) -> bool:
        """Whether a request with this method and path?query is one this fault hits."""
        method_ok = self.method == "*" or self.method.upper() == method.upper()
        return method_ok and self.path_contains in target

    def response(self) -> Response:
        """The faulty answer (not used for delays)."""
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if self.body is None:
            code = _ISSUE_CODES.get(self.status, "processing")
            text = f"injected fault: HTTP {self.status}"
            content = orjson.dumps(outcome("error", code, text))
        elif isinstance(self.body, bytes):
            content = self.body
        elif isinstance(self.body, str):
            content = self.body.encode()
        else:
            content = orjson.dumps(dict(self.body))
        return Response(content, self.status, headers, media_type=FHIR_JSON)


class FaultBook:
    """The pending faults, consumed in the order they were added; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        """Arm a fault; returns it (its `times` counts down as it fires)."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Disarm every fault."""
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[Fault]:
        """Faults that have not fired their full count yet."""
        with self._lock:
            return list(self._faults)

    def take(self, method: str, target: str) -> Fault | None:
        """The first armed fault matching this request, counting one firing of it."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, target):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            self._faults.remove(fault)
                    return fault
        return None
