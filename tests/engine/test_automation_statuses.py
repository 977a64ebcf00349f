"""The registry listing with switches applied: what the CLI and the web page both show."""

from clinicflow.engine import Switch, automation_statuses
from clinicflow.engine.registry import Listing

DIGEST = Listing("daily-digest", "Flag sessions", "cron: 0 16 * * *", "scheduler", "loaded")
BROKEN = Listing("broken", "", "", "", "failed to load: boom")


def test_an_automation_without_a_switch_is_live_with_its_declared_owner():
    [status] = automation_statuses([DIGEST], {})
    assert (status.owner, status.mode, status.switch) == ("scheduler", "live", Switch())


def test_the_owner_override_and_dry_run_switch_are_applied():
    switches = {"daily-digest": Switch(enabled=True, dry_run=True, owner="front-desk")}
    [status] = automation_statuses([DIGEST], switches)
    assert (status.owner, status.mode) == ("front-desk", "dry-run")


def test_a_switched_off_automation_reads_off_and_a_broken_plugin_keeps_its_error():
    statuses = automation_statuses([DIGEST, BROKEN], {"daily-digest": Switch(enabled=False)})
    assert [(s.name, s.mode, s.status) for s in statuses] == [
        ("daily-digest", "off", "loaded"),
        ("broken", "live", "failed to load: boom"),
    ]
