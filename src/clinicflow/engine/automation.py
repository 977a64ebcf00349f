"""How an automation declares itself: name, trigger, units of work, owner and its run function."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from clinicflow.engine.cron import CronSpec, parse_cron
from clinicflow.engine.states import TriggerKind

if TYPE_CHECKING:
    from clinicflow.engine.context import RunContext

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,99}$")


@dataclass(frozen=True, slots=True)
class Unit:
    """A unit of work an automation counts, and what one unit saves the practice."""

    name: str
    minutes_saved: float
    value_cents: int = 0


@dataclass(frozen=True, slots=True)
class Schedule:
    """Run on a cron schedule, read on the practice's wall clock (see `engine.cron` for DST)."""

    cron: str
    spec: CronSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spec", parse_cron(self.cron))

    @property
    def kind(self) -> TriggerKind:
        """TriggerKind.CRON."""
        return TriggerKind.CRON

    def describe(self) -> str:
        """`cron: */15 * * * *`."""
        return f"cron: {self.cron}"


@dataclass(frozen=True, slots=True)
class Event:
    """Run once for each event of this type (e.g. `appointment.cancelled`), or of the `also` types.

    One automation may answer several events that ask for the same work: a slot freed by a
    cancellation and one freed by a reschedule are both backfilled by waitlist-backfill.
    With `coalesce`, the events one dispatch finds are handed to one run together
    (`ctx.trigger.events`), for an automation that does one small job per event and pays more
    for a run than for the job (message-triage: one decision per message, many messages at
    a busy moment). Each event is still in exactly one run.
    """

    type: str
    also: tuple[str, ...] = ()
    coalesce: bool = False

    @property
    def kind(self) -> TriggerKind:
        """TriggerKind.EVENT."""
        return TriggerKind.EVENT

    @property
    def types(self) -> tuple[str, ...]:
        """Every event type this trigger answers, `type` first."""
        return (self.type, *self.also)

    def describe(self) -> str:
        """`event: appointment.cancelled` (`, appointment.rescheduled` for each of `also`)."""
        return f"event: {', '.join(self.types)}"


@dataclass(frozen=True, slots=True)
class Manual:
    """Run only when a person asks (every automation can also be run by hand)."""

    @property
    def kind(self) -> TriggerKind:
        """TriggerKind.MANUAL."""
        return TriggerKind.MANUAL

    def describe(self) -> str:
        """`manual`."""
        return "manual"


Trigger = Schedule | Event | Manual
RunFunction = Callable[["RunContext"], None]


@dataclass(frozen=True, slots=True)
class Automation:
    """An automation: what the registry loads from the `clinicflow.automations` entry points."""

    name: str
    summary: str
    trigger: Trigger
    run: RunFunction = field(repr=False)
    owner: str
    units: tuple[Unit, ...] = ()

    def __post_init__(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise ValueError(
                f"automation name {self.name!r} must be lowercase letters, digits and dashes"
            )
        names = [unit.name for unit in self.units]
        if len(set(names)) != len(names):
            raise ValueError(f"automation {self.name!r} declares a unit twice: {names}")

    def unit(self, name: str) -> Unit:
        """The declared unit called `name`; KeyError names the declared ones otherwise."""
        for unit in self.units:
            if unit.name == name:
                return unit
        declared = ", ".join(u.name for u in self.units) or "none"
        raise KeyError(f"{self.name} declares no unit {name!r} (declared: {declared})")

    def minutes_saved(
        self, units: Mapping[str, int], overrides: Mapping[str, float] | None = None
    ) -> float:
        """Minutes saved by a run that counted `units`; `overrides` (Settings.unit_minutes,
        keyed `automation.unit`) replace the declared estimate with the practice's own."""
        overrides = overrides or {}
        return sum(
            overrides.get(f"{self.name}.{name}", self.unit(name).minutes_saved) * n
            for name, n in units.items()
        )
