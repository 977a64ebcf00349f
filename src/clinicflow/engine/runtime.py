"""Everything the engine needs at run time, built once at the entry point and passed down."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from clinicflow.clock import Clock
from clinicflow.engine.handlers import HandlerEnv, HandlerRegistry, default_handlers
from clinicflow.engine.registry import Registry
from clinicflow.engine.rules import RetryPolicy
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database


@dataclass(frozen=True, slots=True)
class DailyHookContext:
    """What a daily hook gets: the transaction that also records "ran today", and the day."""

    session: Session
    day_on: date
    now: datetime
    settings: Settings
    cipher: PhiCipher


DailyHook = Callable[[DailyHookContext], None]
_DAILY_HOOKS: dict[str, DailyHook] = {}


def register_daily_hook(name: str, fn: DailyHook) -> None:
    """Call `fn` once per practice-local day from the tick (e.g. to anchor the audit chain).

    The hook runs in the same transaction that records it ran, so it happens exactly once a day
    however many workers tick; if it raises, nothing is recorded and the next tick tries again.
    """
    _DAILY_HOOKS[name] = fn


def registered_daily_hooks() -> dict[str, DailyHook]:
    """The process-wide daily hooks."""
    return dict(_DAILY_HOOKS)


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    """Timings of the engine's protocols."""

    effect_lease_s: float = 120.0
    run_lease_s: float = 600.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    requeue_after_s: float = 60.0  # pending work not enqueued for this long is enqueued again
    max_catch_up_s: float = 6 * 3600.0  # cron instants older than this after downtime are skipped
    batch_size: int = 200

    @classmethod
    def from_settings(cls, settings: Settings) -> EnginePolicy:
        """Leases from settings; a stale-work threshold that follows the lease."""
        lease = settings.effect_lease_s
        return cls(
            effect_lease_s=lease,
            run_lease_s=max(lease * 5, lease),
            requeue_after_s=max(2 * lease, 1.0),
        )


def worker_identity() -> str:
    """host:pid, written into leases so a person can see which worker holds what."""
    return f"{socket.gethostname()}:{os.getpid()}"[:40]


def lease_token() -> str:
    """A token unique to one claim (two threads of one worker never share one)."""
    return f"{worker_identity()}/{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True, slots=True)
class EngineRuntime:
    """Database, settings, clock, cipher, automations and effect handlers, together."""

    db: Database
    settings: Settings
    clock: Clock
    cipher: PhiCipher
    registry: Registry
    handlers: HandlerRegistry
    policy: EnginePolicy
    daily_hooks: dict[str, DailyHook] | None = None  # None: the process-wide ones

    def hooks(self) -> dict[str, DailyHook]:
        """The daily hooks this runtime calls."""
        return registered_daily_hooks() if self.daily_hooks is None else dict(self.daily_hooks)

    @classmethod
    def build(
        cls,
        *,
        db: Database,
        settings: Settings,
        clock: Clock,
        cipher: PhiCipher,
        registry: Registry,
        handlers: HandlerRegistry | None = None,
        policy: EnginePolicy | None = None,
    ) -> EngineRuntime:
        """A runtime with the process-wide handlers and hooks unless others are given."""
        return cls(
            db=db,
            settings=settings,
            clock=clock,
            cipher=cipher,
            registry=registry,
            handlers=handlers if handlers is not None else default_handlers(),
            policy=policy if policy is not None else EnginePolicy.from_settings(settings),
        )

    @property
    def zone(self) -> ZoneInfo:
        """The practice's time zone."""
        return ZoneInfo(self.settings.timezone)

    def with_clock(self, clock: Clock) -> EngineRuntime:
        """The same runtime reading another clock (`clinicflow run --now`)."""
        return replace(self, clock=clock)

    def handler_env(self, session: Session) -> HandlerEnv:
        """What handlers get, around `session`."""
        return HandlerEnv(
            session=session,
            db=self.db,
            cipher=self.cipher,
            clock=self.clock,
            settings=self.settings,
        )
