"""HTTP to a FHIR server: bounded timeouts, polite retries, and errors a person can act on.

Every call goes through `FhirHttp.send`: 429 and 503 are retried after the server's `Retry-After`
(seconds or an HTTP date), else after an exponential backoff with full jitter, both capped, a few
times at most; 502/504 and network failures are retried the same way, but only for requests that
are safe to repeat (GET, DELETE, conditional writes). Anything else that fails becomes an
`EhrError` whose message names the request and quotes the server's OperationOutcome.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from clinicflow.clock import SystemClock
from clinicflow.errors import EhrConflictError, EhrError

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
FHIR_NDJSON = "application/fhir+ndjson"
# Connect quickly or not at all; a search page or an export file may take a while to come.
DEFAULT_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=60.0, pool=10.0)
# The base Auth sends a request as it is: for files a manifest says need no token (they may sit
# on a storage host that must never see it), while keeping the retries and error messages.
NO_AUTH = httpx.Auth()
_THROTTLED = frozenset({429, 503})
_TRANSIENT = frozenset({502, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before asking a busy or flaky server again."""

    attempts: int = 5  # tries in all, the first included
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0  # a Retry-After beyond this is cut to it

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter (AWS architecture blog): uniform in [0, base * 2^attempt], capped."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def outcome_text(body: Any) -> str | None:
    """The diagnostics of an OperationOutcome, joined: what the server said was wrong."""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    parts = []
    for issue in body.get("issue") or ():
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        where = ", ".join(issue.get("expression") or issue.get("location") or ())
        severity = issue.get("severity", "error")
        parts.append(
            f"{severity}: {text or issue.get('code', 'unspecified')}"
            + (f" (at {where})" if where else "")
        )
    return "; ".join(parts) or None


def _describe(response: httpx.Response) -> str:
    """The server's own explanation of a failed response, as short as it allows."""
    try:
        said = outcome_text(response.json())
    except ValueError:
        said = None
    if said is None:
        said = response.text[:200].strip() or "no explanation given"
    return said


def _is_repeatable(request: httpx.Request) -> bool:
    """Whether sending `request` twice does no harm if the first one did get through."""
    if request.method in ("GET", "HEAD", "DELETE", "PUT"):
        return True  # PUT replaces whole; with If-Match a repeat after success answers 412
    return "if-none-exist" in request.headers  # a conditional create finds the first copy


class FhirHttp:
    """One FHIR server's base URL, an httpx client with auth, and the retry rules above."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._now = now or SystemClock().now  # Retry-After dates are wall-clock time
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        self.client = httpx.Client(
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers={"Accept": FHIR_JSON, "User-Agent": "clinicflow"},
            follow_redirects=False,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self.client.close()

    def url(self, path_or_url: str) -> str:
        """An absolute URL: paging links and export files come absolute, paths are relative."""
        if path_or_url.startswith(("http://", "https://")):
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str | list[str]] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        ok: tuple[int, ...] = (200, 201),
        what: str | None = None,
        stream: bool = False,
        with_token: bool = True,
    ) -> httpx.Response:
        """Send with retries; return a response whose status is in `ok`, else raise EhrError.

        With `stream`, the caller must close the response (use `lines`).
        """
        auth = httpx.USE_CLIENT_DEFAULT if with_token else NO_AUTH
        content = orjson.dumps(json_body) if json_body is not None else None
        all_headers = dict(headers or {})
        if content is not None:
            all_headers.setdefault("Content-Type", FHIR_JSON)
        request = self.client.build_request(
            method, self.url(path_or_url), params=params, content=content, headers=all_headers
        )
        label = what or f"{method} {request.url.path}"
        for attempt in range(self.retry.attempts):
            last = attempt == self.retry.attempts - 1
            try:
                response = self.client.send(request, stream=stream, auth=auth)
            except (httpx.TimeoutException, httpx.NetworkError) as exc:
                if last or not _is_repeatable(request):
                    raise EhrError(
                        f"{label}: the EHR did not answer ({type(exc).__name__}: {exc}).",
                        retryable=True,
                    ) from exc
                self._wait(attempt, None, label, f"{type(exc).__name__}")
                continue
            status = response.status_code
            if status in ok:
                return response
            retryable = status in _THROTTLED or (status in _TRANSIENT and _is_repeatable(request))
            if retryable and not last:
                if stream:
                    response.close()
                self._wait(attempt, response.headers.get("Retry-After"), label, str(status))
                continue
            if stream:
                response.read()
                response.close()
            raise self._error(label, response, retryable=retryable)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _wait(self, attempt: int, retry_after: str | None, label: str, why: str) -> None:
        told = retry_after_seconds(retry_after, self._now())
        delay = (
            min(told, self.retry.max_delay_s)
            if told is not None
            else self.retry.backoff(attempt, self._rng)
        )
        log.info("ehr.retry", extra={"request": label, "why": why, "delay_s": round(delay, 2)})
        self._sleep(delay)

    @staticmethod
    def _error(label: str, response: httpx.Response, *, retryable: bool) -> EhrError:
        status = response.status_code
        said = _describe(response)
        if status == 412:
            return EhrConflictError(
                f"{label}: changed in the EHR since it was read (412): {said}", status=status
            )
        hint = {
            401: " Check the client id and that the EHR has our JWKS URL registered.",
            403: " The EHR did not grant the scope this needs; check CLINICFLOW_FHIR_SCOPES.",
            404: "",
            429: " The EHR is rate-limiting us; the next sync will try again.",
        }.get(status, "")
        return EhrError(
            f"{label}: the EHR answered {status} {response.reason_phrase}: {said}.{hint}",
            status=status,
            retryable=retryable or status >= 500,
        )

    def get_json(
        self, path_or_url: str, params: Mapping[str, str | list[str]] | None = None
    ) -> dict[str, Any]:
        """GET a JSON document (a resource, a Bundle, a manifest)."""
        response = self.send("GET", path_or_url, params=params, ok=(200,))
        return _json_object(response, f"GET {response.request.url.path}")

    @contextmanager
    def lines(
        self, url: str, *, accept: str = FHIR_NDJSON, with_token: bool = True
    ) -> Iterator[Iterator[bytes]]:
        """Stream an NDJSON download line by line, never holding the whole file."""
        response = self.send(
            "GET", url, headers={"Accept": accept}, ok=(200,), stream=True, with_token=with_token
        )
        try:
            yield _ndjson_lines(response)
        finally:
            response.close()


def _ndjson_lines(response: httpx.Response) -> Iterator[bytes]:
    """Lines of a streamed body, split on newlines across chunk boundaries."""
    pending = b""
    for chunk in response.iter_bytes(1 << 16):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        yield from complete
    if pending:
        yield pending


def _json_object(response: httpx.Response, label: str) -> dict[str, Any]:
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise EhrError(f"{label}: the EHR's answer is not JSON ({exc}).") from exc
    if not isinstance(body, dict):
        raise EhrError(f"{label}: the EHR's answer is not a JSON object.")
    return body
