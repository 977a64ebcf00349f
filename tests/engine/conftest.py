"""Fixtures for engine tests: a runtime over a real database, with the sandbox channel."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from engine_harness import Harness, MakeHarness

from clinicflow.clock import FakeClock
from clinicflow.engine import (
    Automation,
    EnginePolicy,
    EngineRuntime,
    HandlerRegistry,
    Registry,
    default_handlers,
)
from clinicflow.engine.rules import RetryPolicy
from clinicflow.engine.runtime import DailyHook
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for a practice in New York, with data in the test's temp dir."""
    return Settings(data_dir=tmp_path, timezone="America/New_York", effect_lease_s=30.0)


@pytest.fixture
def make_harness(
    db: Database, clock: FakeClock, cipher: PhiCipher, settings: Settings
) -> MakeHarness:
    """Build a Harness over the `db` fixture (SQLite and PostgreSQL) for some automations."""

    def make(
        automations: Iterable[Automation] = (),
        *,
        handlers: HandlerRegistry | None = None,
        retry: RetryPolicy | None = None,
        start: datetime | None = None,
        daily_hooks: dict[str, DailyHook] | None = None,
    ) -> Harness:
        """`start` sets the clock (default: the `clock` fixture); hooks default to none."""
        fake = FakeClock(start) if start is not None else clock
        policy = EnginePolicy(
            effect_lease_s=30.0,
            run_lease_s=60.0,
            requeue_after_s=30.0,
            retry=retry or RetryPolicy(max_attempts=3, base_delay_s=10.0, max_delay_s=60.0),
        )
        rt = EngineRuntime.build(
            db=db,
            settings=settings,
            clock=fake,
            cipher=cipher,
            registry=Registry(automations),
            handlers=handlers or default_handlers().copy(),
            policy=policy,
        )
        return Harness(replace(rt, daily_hooks=daily_hooks or {}), fake)

    return make
