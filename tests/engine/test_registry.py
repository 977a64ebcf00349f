"""The registry: entry points and extras load; a broken plugin is listed with its reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinicflow.engine import Automation, Manual, Registry, RunContext, Schedule, Unit
from clinicflow.errors import EngineError

GROUP = "clinicflow.test_automations"


def _nothing(ctx: RunContext) -> None:
    ctx.logger.info("nothing")


FINE = Automation(name="fine", summary="Fine", trigger=Manual(), run=_nothing, owner="nurse")


def _install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, entries: str) -> None:
    dist = tmp_path / "cf_test_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cf-test-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[{GROUP}]\n{entries}\n")
    (tmp_path / "cf_test_plugin.py").write_text(
        "from clinicflow.engine import Automation, Manual\n"
        "AUTOMATION = Automation(name='from-plugin', summary='Plugged in', trigger=Manual(),\n"
        "                        run=lambda ctx: None, owner='billing')\n"
        "NOT_AN_AUTOMATION = 42\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))


def test_entry_points_load_and_a_broken_plugin_is_listed_with_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install_plugin(
        tmp_path,
        monkeypatch,
        "from-plugin = cf_test_plugin:AUTOMATION\n"
        "missing = cf_no_such_module:AUTOMATION\n"
        "wrong-type = cf_test_plugin:NOT_AN_AUTOMATION",
    )
    registry = Registry.load(group=GROUP)
    assert registry.names() == ["from-plugin"]
    statuses = {line.name: line.status for line in registry.listing()}
    assert statuses["from-plugin"] == "loaded"
    assert statuses["missing"].startswith("failed to load: ModuleNotFoundError")
    assert "cf_no_such_module" in statuses["missing"]
    assert statuses["wrong-type"] == (
        "failed to load: cf_test_plugin:NOT_AN_AUTOMATION is a int, not an Automation"
    )
    with pytest.raises(EngineError, match="failed to load: ModuleNotFoundError"):
        registry.get("missing")


def test_extra_automations_are_loaded_from_module_and_attribute() -> None:
    registry = Registry.load(group=GROUP, extra="worker_automations:BATCH, no_such_mod:X")
    assert registry.names() == ["test-batch"]
    [failure] = registry.failures
    assert failure.source == "no_such_mod:X"


def test_a_registry_can_be_built_from_explicit_automations() -> None:
    registry = Registry([FINE])
    assert registry.get("fine") is FINE
    assert [line.trigger for line in registry.listing()] == ["manual"]


def test_two_automations_with_one_name_keep_the_first_and_report_the_second() -> None:
    registry = Registry([FINE, FINE])
    assert registry.names() == ["fine"]
    assert "already used" in registry.failures[0].reason


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad Name"}, "lowercase"),
        ({"units": (Unit("a", 1.0), Unit("a", 2.0))}, "unit twice"),
    ],
)
def test_a_bad_declaration_is_refused_when_the_plugin_loads(
    kwargs: dict[str, object], message: str
) -> None:
    declaration: dict[str, object] = {
        "name": "ok",
        "summary": "",
        "trigger": Manual(),
        "run": _nothing,
        "owner": "x",
    }
    with pytest.raises(ValueError, match=message):
        Automation(**{**declaration, **kwargs})  # type: ignore[arg-type]


def test_a_schedule_that_is_not_cron_is_refused_with_the_expression() -> None:
    with pytest.raises(ValueError, match="'every morning' must have five fields"):
        Schedule("every morning")
