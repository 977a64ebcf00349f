"""Search: parameters, the matching records of one page, and the searchset Bundle.

Results are ordered by (meta.lastUpdated, id) ascending, so an incremental sync can page
through a type deterministically. The `next` link carries the same filters plus an opaque
`_page_token` holding the last (lastUpdated, id) served: the next page starts right after it,
so paging stays exact even when resources are added or changed while a client pages (a changed
resource moves to the end and is served again there, as on a real server).

Supported: `_count`, `_id`, `identifier` (`system|value` tokens), `_lastUpdated`
(eq/ne/gt/ge/lt/le/sa/eb, repeatable), `status` (on types that have one), and for Appointment
`date` (on `start`), `patient` and `_include=Appointment:patient`. Other parameters are
ignored and left out of the links (FHIR's lenient handling); a modifier on a supported
parameter is refused, since ignoring it would silently change the result.
"""

from __future__ import annotations

import base64
import binascii
import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

import orjson
from tests.fhir_peer.fhirtime import TimeValueError, format_instant, parse_range
from tests.fhir_peer.outcome import invalid, not_supported
from tests.fhir_peer.records import Record
from tests.fhir_peer.store import Store, TypeIndex

HIDDEN_STATUSES = frozenset({"entered-in-error"})  # what hide_entered_in_error leaves out
# R4 types with a `status` search parameter among those a practice system exchanges.
STATUS_TYPES = frozenset(
    {
        "Appointment",
        "Slot",
        "Communication",
        "CommunicationRequest",
        "Coverage",
        "Task",
        "Encounter",
        "DocumentReference",
        "Location",
        "Observation",
        "Procedure",
        "ServiceRequest",
        "MedicationRequest",
        "DiagnosticReport",
        "Immunization",
        "CarePlan",
        "Claim",
        "ExplanationOfBenefit",
    }
)
_PREFIXES = frozenset({"eq", "ne", "gt", "ge", "lt", "le", "sa", "eb"})
_PATIENT_INCLUDES = frozenset({"Appointment:patient", "Appointment:patient:Patient"})
_FILTER_PARAMS = frozenset({"_id", "identifier", "_lastUpdated", "status", "date", "patient"})


@dataclass(frozen=True)
class DateFilter:
    """A date search condition: the instant lies in [low, high) (either end open), or not."""

    low: int | None
    high: int | None
    negate: bool = False

    def test(self, moment: int | None) -> bool:
        """Whether a stored instant satisfies it (a missing one never does)."""
        if moment is None:
            return False
        inside = (self.low is None or moment >= self.low) and (
            self.high is None or moment < self.high
        )
        return inside != self.negate


def date_filter(name: str, value: str) -> DateFilter:
    """A filter from `[prefix]value` (FHIR R4 search §3.1.1.4.2, ranges per §3.1.1.5.7)."""
    prefix = "eq"
    if len(value) > 2 and value[:2].isalpha():
        prefix, value = value[:2], value[2:]
        if prefix == "ap":
            raise not_supported(f"{name}: the 'ap' (approximately) prefix is not supported")
        if prefix not in _PREFIXES:
            raise invalid(f"{name}: unknown prefix {prefix!r}")
    if "," in value:
        raise not_supported(f"{name}: comma-separated (OR) date values are not supported")
    try:
        low, high = parse_range(value, name)
    except TimeValueError as exc:
        raise invalid(str(exc)) from None
    if prefix in ("gt", "sa"):
        return DateFilter(high, None)
    if prefix == "ge":
        return DateFilter(low, None)
    if prefix in ("lt", "eb"):
        return DateFilter(None, low)
    if prefix == "le":
        return DateFilter(None, high)
    return DateFilter(low, high, negate=prefix == "ne")


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts (after this key), and the total counted on page one."""

    last_updated: int
    fhir_id: str
    total: int

    def encode(self) -> str:
        """The opaque `_page_token` value."""
        packed = orjson.dumps([self.last_updated, self.fhir_id, self.total])
        return base64.urlsafe_b64encode(packed).decode().rstrip("=")

    @staticmethod
    def decode(token: str) -> Cursor:
        """Read a `_page_token`; 400 if it is not one the peer made."""
        try:
            packed = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            last_updated, fhir_id, total = orjson.loads(packed)
        except (ValueError, TypeError, binascii.Error):
            raise invalid(f"_page_token {token!r} is not a page token from this server") from None
        if not (isinstance(last_updated, int) and isinstance(fhir_id, str)):
            raise invalid(f"_page_token {token!r} is not a page token from this server")
        if not isinstance(total, int):
            raise invalid(f"_page_token {token!r} is not a page token from this server")
        return Cursor(last_updated, fhir_id, total)


@dataclass
class SearchQuery:
    """A parsed search: conditions are ANDed; each set holds a comma list's alternatives."""

    resource_type: str
    count: int
    id_sets: list[frozenset[str]] = field(default_factory=list)
    identifier_sets: list[frozenset[str]] = field(default_factory=list)
    last_updated: list[DateFilter] = field(default_factory=list)
    status_sets: list[frozenset[str]] = field(default_factory=list)
    date: list[DateFilter] = field(default_factory=list)
    patient_sets: list[frozenset[str]] = field(default_factory=list)
    include_patients: bool = False
    # Never matched (PeerConfig.hide_entered_in_error).
    hidden_statuses: frozenset[str] = frozenset()
    cursor: Cursor | None = None
    # The recognised parameters as sent, for the self and next links.
    link_params: list[tuple[str, str]] = field(default_factory=list)

    def bounds(self) -> tuple[int | None, int | None]:
        """The lastUpdated range all positive `_lastUpdated` conditions allow together."""
        lows = [f.low for f in self.last_updated if not f.negate and f.low is not None]
        highs = [f.high for f in self.last_updated if not f.negate and f.high is not None]
        return (max(lows) if lows else None, min(highs) if highs else None)

    def needs_record_test(self) -> bool:
        """Whether records must be tested one by one (beyond the lastUpdated range)."""
        return bool(
            self.id_sets
            or self.identifier_sets
            or self.status_sets
            or self.date
            or self.patient_sets
            or self.hidden_statuses
            or any(f.negate for f in self.last_updated)
        )

    def matches(self, record: Record) -> bool:
        """Whether a record meets every condition (the lastUpdated range included)."""
        return (
            all(f.test(record.last_updated) for f in self.last_updated)
            and all(record.id in ids for ids in self.id_sets)
            and all(not tokens.isdisjoint(record.identifiers) for tokens in self.identifier_sets)
            and all(record.status in statuses for statuses in self.status_sets)
            and all(f.test(record.start) for f in self.date)
            and all(not patients.isdisjoint(record.patients) for patients in self.patient_sets)
            and record.status not in self.hidden_statuses
        )


def _values(value: str) -> frozenset[str]:
    return frozenset(part for part in value.split(",") if part)


def _patient_values(value: str) -> frozenset[str]:
    return frozenset(part.rpartition("Patient/")[2] for part in value.split(",") if part)


def parse_query(
    resource_type: str, items: Sequence[tuple[str, str]], default_count: int, max_count: int
) -> SearchQuery:
    """A SearchQuery from the query (and form) parameters; 400 for bad values."""
    query = SearchQuery(resource_type, default_count)
    is_appointment = resource_type == "Appointment"
    for name, value in items:
        base, _, modifier = name.partition(":")
        if modifier and base in _FILTER_PARAMS | {"_count", "_page_token"}:
            raise not_supported(f"modifier :{modifier} on {base} is not supported")
        if value == "":
            continue  # FHIR: a parameter with an empty value is ignored
        if name == "_count":
            if not value.isdigit():
                raise invalid(f"_count must be a non-negative integer, got {value!r}")
            query.count = min(int(value), max_count)
        elif name == "_page_token":
            query.cursor = Cursor.decode(value)
        elif name == "_id":
            query.id_sets.append(_values(value))
        elif name == "identifier":
            query.identifier_sets.append(_values(value))
        elif name == "_lastUpdated":
            query.last_updated.append(date_filter(name, value))
        elif name == "status" and resource_type in STATUS_TYPES:
            query.status_sets.append(_values(value))
        elif name == "date" and is_appointment:
            query.date.append(date_filter(name, value))
        elif name == "patient" and is_appointment:
            query.patient_sets.append(_patient_values(value))
        elif name == "_include" and is_appointment and value in _PATIENT_INCLUDES:
            query.include_patients = True
        else:
            continue  # not supported: ignored, and not echoed in the links
        if name not in ("_count", "_page_token"):
            query.link_params.append((name, value))
    return query


@dataclass
class Page:
    """One page of results: matches in order, included resources, total, where to go on."""

    matches: list[Record]
    includes: list[Record]
    total: int
    next_cursor: Cursor | None


def _candidates(index: TypeIndex, query: SearchQuery, after: Cursor | None) -> Iterator[Record]:
    """Records in key order that may match: within the lastUpdated range and after `after`."""
    low, high = query.bounds()
    if query.id_sets:
        ids = frozenset.intersection(*query.id_sets)
        found = sorted((index.by_id[i] for i in ids if i in index.by_id), key=lambda r: r.key)
        for record in found:
            if after is None or record.key > (after.last_updated, after.fhir_id):
                yield record
        return
    start = 0 if low is None else bisect.bisect_left(index.keys, (low, ""))
    if after is not None:
        start = max(start, bisect.bisect_right(index.keys, (after.last_updated, after.fhir_id)))
    stop = len(index.keys) if high is None else bisect.bisect_left(index.keys, (high, ""))
    if start < stop:
        yield from index.records(start, stop)


def _count_matches(index: TypeIndex, query: SearchQuery) -> int:
    if not query.needs_record_test():
        low, high = query.bounds()
        start = 0 if low is None else bisect.bisect_left(index.keys, (low, ""))
        stop = len(index.keys) if high is None else bisect.bisect_left(index.keys, (high, ""))
        return max(0, stop - start)
    return sum(1 for record in _candidates(index, query, None) if query.matches(record))


def run_search(store: Store, query: SearchQuery) -> Page:
    """The page of results `query` asks for.

    `total` is counted when a search starts and carried in the page token, as servers that
    snapshot a result set do: it stays the same on every page of one search.
    """
    with store.lock:
        index = store.index(query.resource_type)
        if index is None:
            return Page([], [], 0, None)
        cursor = query.cursor
        total = cursor.total if cursor is not None else _count_matches(index, query)
        matches: list[Record] = []
        more = False
        if query.count > 0:
            for record in _candidates(index, query, cursor):
                if not query.matches(record):
                    continue
                if len(matches) == query.count:
                    more = True
                    break
                matches.append(record)
        includes = _included_patients(store, matches) if query.include_patients else []
    next_cursor = None
    if more:
        last = matches[-1]
        next_cursor = Cursor(last.last_updated, last.id, total)
    return Page(matches, includes, total, next_cursor)


def _included_patients(store: Store, matches: list[Record]) -> list[Record]:
    patients = store.index("Patient")
    if patients is None:
        return []
    wanted = dict.fromkeys(pid for record in matches for pid in record.patients)
    return [patients.by_id[pid] for pid in wanted if pid in patients.by_id]


def resource_json(record: Record) -> bytes:
    """A record as a JSON value for a Bundle entry.

    Stored JSON goes in byte for byte, malformed FHIR and all; put_raw bytes that are not JSON
    at all become a JSON string, so the Bundle stays parseable and the client meets a
    malformed entry (a string where a resource object should be) it must reject on its own.
    """
    if record.is_json:
        return record.raw
    return orjson.dumps(record.raw.decode("utf-8", errors="replace"))


def _entry(base: str, record: Record, mode: bytes) -> bytes:
    full_url = orjson.dumps(f"{base}/{record.resource_type}/{record.id}")
    return (
        b'{"fullUrl":'
        + full_url
        + b',"resource":'
        + resource_json(record)
        + b',"search":{"mode":"'
        + mode
        + b'"}}'
    )


def bundle_bytes(base: str, query: SearchQuery, page: Page, bundle_id: str, now_us: int) -> bytes:
    """The searchset Bundle, assembled from stored bytes without parsing them."""
    url = f"{base}/{query.resource_type}"
    params = [*query.link_params, ("_count", str(query.count))]
    self_params = (
        params if query.cursor is None else [*params, ("_page_token", query.cursor.encode())]
    )
    links = [{"relation": "self", "url": f"{url}?{urlencode(self_params)}"}]
    if page.next_cursor is not None:
        next_params = [*params, ("_page_token", page.next_cursor.encode())]
        links.append({"relation": "next", "url": f"{url}?{urlencode(next_params)}"})
    head = {
        "resourceType": "Bundle",
        "id": bundle_id,
        "meta": {"lastUpdated": format_instant(now_us)},
        "type": "searchset",
        "total": page.total,
        "link": links,
    }
    entries = [_entry(base, record, b"match") for record in page.matches]
    entries += [_entry(base, record, b"include") for record in page.includes]
    if not entries:
        return orjson.dumps(head)
    return orjson.dumps(head)[:-1] + b',"entry":[' + b",".join(entries) + b"]}"
