"""What the web app's routes share, built once when the app starts."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import cached_property

from clinicflow.clock import Clock
from clinicflow.engine import EXTRA_AUTOMATIONS_ENV, Registry, TaskQueue
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.web.board_cache import BoardCache


@dataclass
class AppState:
    """Settings, database, clock, registry and queue handle for one app instance."""

    settings: Settings
    db: Database
    clock: Clock
    registry: Registry = field(
        default_factory=lambda: Registry.load(extra=os.environ.get(EXTRA_AUTOMATIONS_ENV))
    )

    @cached_property
    def board_cache(self) -> BoardCache:
        """Rendered Today boards, shared by the request threads of this process."""
        return BoardCache()

    @cached_property
    def queue(self) -> TaskQueue:
        """The job queue, opened on first use and reused (readiness checks ping it)."""
        return TaskQueue.from_settings(self.settings)
