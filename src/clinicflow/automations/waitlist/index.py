"""A waitlist bucketed so that a freed slot looks only at entries that could take it (pure).

Built once from the entries; `candidates` returns, for one slot, a superset of the entries
`rank` would keep: those asking for the slot's practitioner, or for anyone in its specialty, with
a visit type the slot can hold, whose date window has opened by the slot's day. `rank` then does
the full check, so `rank(index.candidates(slot, policy), slot, ...)` equals `rank(entries, slot,
...)`; the index only saves the time of looking at the rest (a tested property).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from clinicflow.automations.waitlist.entries import FreedSlot, WaitlistEntry
from clinicflow.automations.waitlist.rules import RankingPolicy


@dataclass(frozen=True, slots=True)
class _Bucket:
    """Entries sorted by the first day they can come, with those days for bisecting."""

    entries: tuple[WaitlistEntry, ...]
    earliest: tuple[int, ...]  # date ordinals; 0 for entries open from any day

    def opened_by(self, day_on: date) -> tuple[WaitlistEntry, ...]:
        """The entries whose window has started on or before `day_on`."""
        return self.entries[: bisect_right(self.earliest, day_on.toordinal())]


def _bucket(entries: list[WaitlistEntry]) -> _Bucket:
    def opens(entry: WaitlistEntry) -> int:
        return entry.earliest_on.toordinal() if entry.earliest_on is not None else 0

    ordered = sorted(entries, key=opens)
    return _Bucket(tuple(ordered), tuple(opens(e) for e in ordered))


# Bucket keys: ("practitioner", id) for entries naming one, ("specialty", code) for the others.
_Key = tuple[str, str]


class WaitlistIndex:
    """Waitlist entries by who they want and visit type; opted-out entries are left out."""

    __slots__ = ("_buckets", "size")

    def __init__(self, entries: Iterable[WaitlistEntry]) -> None:
        grouped: defaultdict[_Key, defaultdict[str, list[WaitlistEntry]]] = defaultdict(
            lambda: defaultdict(list)
        )
        size = 0
        for entry in entries:
            if entry.opted_out:
                continue
            if entry.practitioner_id is not None:
                key = ("practitioner", entry.practitioner_id)
            else:
                key = ("specialty", entry.specialty)
            grouped[key][entry.visit_type].append(entry)
            size += 1
        self.size = size
        self._buckets: dict[_Key, dict[str, _Bucket]] = {
            key: {kind: _bucket(found) for kind, found in by_type.items()}
            for key, by_type in grouped.items()
        }

    def candidates(self, slot: FreedSlot, policy: RankingPolicy) -> list[WaitlistEntry]:
        """Entries that might take `slot`: a superset of those `rank` keeps for it."""
        day_on = slot.start_at.astimezone(slot.zone).date()
        found: list[WaitlistEntry] = []
        for key in (("practitioner", slot.practitioner_id), ("specialty", slot.specialty)):
            by_type = self._buckets.get(key)
            if not by_type:
                continue
            if slot.visit_type is None:
                kinds: Iterable[str] = by_type
            else:
                held = sorted(policy.holds.get(slot.visit_type, ()))
                kinds = dict.fromkeys((slot.visit_type, *held))
            for kind in kinds:
                bucket = by_type.get(kind)
                if bucket is not None:
                    found.extend(bucket.opened_by(day_on))
        return found
