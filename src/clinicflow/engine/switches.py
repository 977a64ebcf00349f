"""Per-automation switches (on/off, dry-run, owner override) set by the automation team."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from clinicflow.engine.registry import Listing
from clinicflow.store.engine import AutomationSetting


@dataclass(frozen=True, slots=True)
class Switch:
    """How an automation is set: no row in the table means enabled, live, declared owner."""

    enabled: bool = True
    dry_run: bool = False
    owner: str | None = None

    @property
    def mode(self) -> str:
        """`off`, `dry-run` or `live`, as the automation team reads it."""
        return "off" if not self.enabled else "dry-run" if self.dry_run else "live"


@dataclass(frozen=True, slots=True)
class AutomationStatus:
    """One automation as listed, with its switch applied (the owner override wins)."""

    name: str
    summary: str
    trigger: str
    owner: str
    status: str
    switch: Switch

    @property
    def mode(self) -> str:
        """`off`, `dry-run` or `live`."""
        return self.switch.mode


def automation_statuses(
    listing: Iterable[Listing], switches: Mapping[str, Switch]
) -> list[AutomationStatus]:
    """The registry's listing with each automation's stored switch applied."""
    statuses = []
    for line in listing:
        switch = switches.get(line.name, Switch())
        owner = switch.owner or line.owner
        statuses.append(
            AutomationStatus(line.name, line.summary, line.trigger, owner, line.status, switch)
        )
    return statuses


def switch_for(session: Session, automation: str) -> Switch:
    """The switch of one automation."""
    row = session.get(AutomationSetting, automation)
    return Switch() if row is None else Switch(row.enabled, row.dry_run, row.owner)


def all_switches(session: Session) -> dict[str, Switch]:
    """Every automation that has a row, by name."""
    rows = session.scalars(select(AutomationSetting))
    return {row.automation: Switch(row.enabled, row.dry_run, row.owner) for row in rows}


OWNER_UNCHANGED = object()  # for `owner`: leave it as it is (None means "the declared owner")


def set_switch(
    session: Session,
    automation: str,
    *,
    actor: str,
    now: datetime,
    enabled: bool | None = None,
    dry_run: bool | None = None,
    owner: str | object | None = OWNER_UNCHANGED,
) -> Switch:
    """Change some of an automation's switches (None leaves one as it is); the new switch."""
    row = session.get(AutomationSetting, automation, with_for_update=True)
    if row is None:
        row = AutomationSetting(automation=automation, enabled=True, dry_run=False, owner=None)
        session.add(row)
    if enabled is not None:
        row.enabled = enabled
    if dry_run is not None:
        row.dry_run = dry_run
    if owner is not OWNER_UNCHANGED:
        row.owner = owner if isinstance(owner, str) and owner else None
    row.updated_at = now
    row.updated_by = actor
    session.flush()
    return Switch(row.enabled, row.dry_run, row.owner)
