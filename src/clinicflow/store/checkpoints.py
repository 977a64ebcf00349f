"""WAL checkpoints of a SQLite file on a thread of their own, off the writers' commits.

In WAL mode a commit only appends pages to the `-wal` file; a checkpoint copies them back into
the database file and syncs both. Left to SQLite (`wal_autocheckpoint`), the commit that crosses
the threshold does that work itself: on a reminders week that was ~20 commits of 0.1-0.3 s each
and ~3 s of a 27-30 s week spent waiting for the disk (docs/benchmarks.md), inside the run's or
the batch's write transaction, with every other writer queued behind it.

A `WalCheckpointer` runs `PRAGMA wal_checkpoint(PASSIVE)` every `every_s` seconds on its own
connection. PASSIVE takes no lock a writer needs and never waits: it copies what it can and
leaves the rest for the next round, so a busy writer is never held up. The sqlite3 module lets
go of the GIL while SQLite works, so the copying and the syncs overlap the writer's Python. Once
the WAL is fully copied, the next writer starts it again from the beginning, so it stays small
and autocheckpoints (still on, the backstop when this thread is not running) seldom fire.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

DEFAULT_EVERY_S = 0.5


@dataclass(slots=True)
class CheckpointStats:
    """What the thread has done, for logs and tests: the last round's figures as SQLite gives
    them (frames in the WAL, and how many of those are in the database file by now)."""

    rounds: int = 0
    wal_frames: int = 0
    copied: int = 0
    failures: int = 0


class WalCheckpointer:
    """A daemon thread checkpointing one SQLite file's WAL until `stop` is called."""

    def __init__(self, path: Path, *, every_s: float = DEFAULT_EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        self.stats = CheckpointStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._loop, name="clinicflow-wal-checkpoint", daemon=True
        )

    def start(self) -> WalCheckpointer:
        """Start checkpointing; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Finish the round in hand and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=self.every_s + 30)

    def checkpoint_once(self, conn: sqlite3.Connection) -> bool:
        """One PASSIVE checkpoint; whether the WAL is now wholly in the database file."""
        busy, wal_frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.stats.rounds += 1
        self.stats.wal_frames, self.stats.copied = max(wal_frames, 0), max(copied, 0)
        if busy:
            logger.debug("WAL checkpoint busy", extra={"wal_frames": wal_frames})
        # -1, -1: the database is not in WAL mode (a rollback journal), so there is no WAL.
        return bool(wal_frames == copied)

    def _loop(self) -> None:
        # Its own connection, autocommit: it holds no transaction between rounds, so it never
        # pins an old snapshot that would keep the WAL from being restarted.
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            while not self._stop.wait(self.every_s):
                try:
                    self.checkpoint_once(conn)
                except sqlite3.Error:  # a locked or busy file: the next round tries again
                    self.stats.failures += 1
                    logger.warning("WAL checkpoint failed", exc_info=True)
        finally:
            conn.close()
