"""A short-lived, in-process cache of rendered Today boards.

Eight people at the front desk refreshing the same board each cost ~60 ms of decrypting, querying
and rendering 600 rows; the board only changes when the replica does. An entry is keyed by what the
board shows (day, filters, zone) and the replica's generation of appointments, patients and
practitioners, and lives at most `ttl_s` (the reminders-sent counts are not in the generation).
Every view is still audited with the rows it showed. The cache holds decrypted names in this
process's memory only, as every request does while it renders; nothing is written anywhere.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from clinicflow.boards import TodayVisit

__all__ = ["BOARD_TYPES", "BoardCache", "CachedBoard"]

BOARD_TYPES = ("Appointment", "Patient", "Practitioner", "NoShowScore")  # scores: noshow-risk


@dataclass(frozen=True, slots=True)
class CachedBoard:
    """A rendered board and the rows it shows (for the audit row)."""

    rows: tuple[TodayVisit, ...]
    html: str


class BoardCache:
    """At most `size` boards, each for at most `ttl_s` seconds; safe across request threads."""

    def __init__(self, *, ttl_s: float = 15.0, size: int = 32) -> None:
        self.ttl_s = ttl_s
        self.size = size
        self._entries: OrderedDict[Hashable, tuple[float, CachedBoard]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> CachedBoard | None:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] <= now:
                self._entries.pop(key, None)
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: Hashable, board: CachedBoard) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self.ttl_s, board)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
