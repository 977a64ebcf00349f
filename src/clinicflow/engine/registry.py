"""The automation registry: what the `clinicflow.automations` entry points (and extras) provide.

A plugin that fails to load is kept with its reason and shown as "failed to load: <reason>"; it
never just disappears. For plugin development, `CLINICFLOW_EXTRA_AUTOMATIONS=module:attr,...`
names more automations to load without installing a package (the worker honours it too).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from clinicflow.engine.automation import Automation
from clinicflow.errors import EngineError

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "clinicflow.automations"
EXTRA_AUTOMATIONS_ENV = "CLINICFLOW_EXTRA_AUTOMATIONS"


@dataclass(frozen=True, slots=True)
class LoadFailure:
    """A plugin that could not be loaded, and why."""

    name: str
    source: str
    reason: str

    @property
    def status(self) -> str:
        """`failed to load: <reason>`."""
        return f"failed to load: {self.reason}"


@dataclass(frozen=True, slots=True)
class Listing:
    """One line of `clinicflow automations list`."""

    name: str
    summary: str
    trigger: str
    owner: str
    status: str


def _load_target(source: str) -> object:
    module_name, _, attr = source.partition(":")
    target: object = importlib.import_module(module_name)
    for part in attr.split(".") if attr else ():
        target = getattr(target, part)
    return target


class Registry:
    """Loaded automations by name, plus the plugins that failed to load."""

    def __init__(self, automations: Iterable[Automation], failures: Iterable[LoadFailure] = ()):
        self._automations: dict[str, Automation] = {}
        self._failures: list[LoadFailure] = list(failures)
        for automation in automations:
            self._add(automation, source=automation.name)

    def _add(self, automation: Automation, *, source: str) -> None:
        if automation.name in self._automations:
            reason = f"the name {automation.name!r} is already used by another automation"
            self._failures.append(LoadFailure(automation.name, source, reason))
            return
        self._automations[automation.name] = automation

    def _add_source(self, name: str, source: str, load: EntryPoint | None) -> None:
        try:
            loaded = load.load() if load is not None else _load_target(source)
        except Exception as exc:  # noqa: BLE001  (plugin boundary: any import error is reported)
            logger.info("automation failed to load", extra={"plugin": name, "source": source})
            reason = f"{type(exc).__name__}: {exc}"
            self._failures.append(LoadFailure(name, source, reason))
            return
        if not isinstance(loaded, Automation):
            reason = f"{source} is a {type(loaded).__name__}, not an Automation"
            self._failures.append(LoadFailure(name, source, reason))
            return
        self._add(loaded, source=source)

    @classmethod
    def load(cls, *, extra: str | None = None, group: str = ENTRY_POINT_GROUP) -> Registry:
        """Every automation from the entry-point group, then the `module:attr` list in `extra`."""
        registry = cls(())
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            registry._add_source(ep.name, ep.value, ep)
        for source in (s.strip() for s in (extra or "").split(",")):
            if source:
                registry._add_source(source, source, None)
        return registry

    @property
    def failures(self) -> list[LoadFailure]:
        """Plugins that failed to load."""
        return list(self._failures)

    def names(self) -> list[str]:
        """Names of the loaded automations, sorted."""
        return sorted(self._automations)

    def automations(self) -> list[Automation]:
        """The loaded automations, sorted by name."""
        return [self._automations[name] for name in self.names()]

    def find(self, name: str) -> Automation | None:
        """The automation called `name`, if loaded."""
        return self._automations.get(name)

    def get(self, name: str) -> Automation:
        """The automation called `name`; EngineError says if it failed to load or is unknown."""
        found = self._automations.get(name)
        if found is not None:
            return found
        for failure in self._failures:
            if failure.name == name:
                raise EngineError(
                    f"Automation {name!r} {failure.status}", code="automation.load_failed"
                )
        known = ", ".join(self.names()) or "none"
        raise EngineError(
            f"There is no automation called {name!r} (loaded: {known}).",
            code="automation.unknown",
        )

    def listing(self) -> list[Listing]:
        """Every automation and every failed plugin, by name."""
        lines = [
            Listing(a.name, a.summary, a.trigger.describe(), a.owner, "loaded")
            for a in self.automations()
        ]
        lines += [Listing(f.name, "", "", "", f.status) for f in self._failures]
        return sorted(lines, key=lambda line: line.name)
