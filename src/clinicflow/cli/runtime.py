"""What every CLI command needs, built once from Settings at the entry point."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from rich.console import Console

from clinicflow.clock import Clock, FakeClock, SystemClock, parse_instant
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database


@dataclass
class Runtime:
    """Settings, database, clock, cipher and consoles for one CLI invocation."""

    settings: Settings
    clock: Clock
    # soft_wrap: lines such as `FILE:LINE: reason` must not be broken at the terminal width.
    console: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    @classmethod
    def load(cls, *, now: str | None = None) -> Runtime:
        """Read settings (env, TOML) and set the clock (`now` pins it, for demos and replays)."""
        clock: Clock = FakeClock(parse_instant(now)) if now else SystemClock()
        return cls(settings=Settings(), clock=clock)

    @cached_property
    def db(self) -> Database:
        """The configured database."""
        return Database.from_url(self.settings.resolved_database_url)

    @cached_property
    def cipher(self) -> PhiCipher:
        """The PHI cipher; the key file is created on first use in the embedded default."""
        return PhiCipher(keyring_from_settings(self.settings))

    def out(self, obj: Any) -> None:
        """Machine-readable output: plain JSON on stdout, never through rich."""
        sys.stdout.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
        sys.stdout.flush()
