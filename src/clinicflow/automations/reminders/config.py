"""The practice's reminder policy, from `<data dir>/reminders.toml` (optional; defaults apply).

```toml
closed_on = ["2026-12-25", "2027-01-01"]     # practice-local dates: nothing is sent those days

[[touchpoint]]                                # replaces the default touchpoints when given
name = "email-7d"; channel = "email"; lead_hours = 168
[[touchpoint]]
name = "sms-2d"; channel = "sms"; lead_hours = 48; asks_reply = true

[specialty."394602003"]                       # a specialty's own list (SNOMED code)
touchpoints = [{ name = "sms-3d", channel = "sms", lead_hours = 72, asks_reply = true }]
[appointment_type.FOLLOWUP]
touchpoints = [{ name = "sms-1d", channel = "sms", lead_hours = 24, asks_reply = true }]

high_risk_at = 0.30                           # no-show risk from which a visit gets the extras
[[high_risk_touchpoint]]                      # replaces the default extra (an SMS a day before)
name = "sms-1d-risk"; channel = "sms"; lead_hours = 24; asks_reply = true
```
"""

from __future__ import annotations

import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from clinicflow.automations.reminders.policy import (
    DEFAULT_TOUCHPOINTS,
    HIGH_RISK_AT,
    HIGH_RISK_TOUCHPOINTS,
    Policy,
    Touchpoint,
)
from clinicflow.engine.payloads import MessageChannel
from clinicflow.errors import InputError
from clinicflow.settings import Settings

POLICY_FILE = "reminders.toml"


def policy_path(settings: Settings) -> Path:
    """Where the practice keeps its reminder policy."""
    return settings.data_dir / POLICY_FILE


def load_policy(settings: Settings) -> Policy:
    """The practice's policy, or the defaults when it has no file; InputError names the flaw."""
    path = policy_path(settings)
    if not path.exists():
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(exc), where=str(path)) from None
    return parse_policy(data, where=str(path))


def parse_policy(data: dict[str, Any], *, where: str) -> Policy:
    """A Policy from the file's parsed contents."""
    default = _touchpoints(data.get("touchpoint"), f"{where}: touchpoint") or DEFAULT_TOUCHPOINTS
    by_specialty = {
        str(code): _touchpoints(entry.get("touchpoints"), f"{where}: specialty {code}")
        for code, entry in (data.get("specialty") or {}).items()
    }
    by_type = {
        str(code): _touchpoints(entry.get("touchpoints"), f"{where}: appointment_type {code}")
        for code, entry in (data.get("appointment_type") or {}).items()
    }
    closed: set[date] = set()
    for text in data.get("closed_on") or []:
        try:
            closed.add(date.fromisoformat(str(text)))
        except ValueError:
            raise InputError(
                f"closed_on {text!r} is not a date like 2026-12-25", where=where
            ) from None
    high_risk = _touchpoints(data.get("high_risk_touchpoint"), f"{where}: high_risk_touchpoint")
    high_risk_at = data.get("high_risk_at", HIGH_RISK_AT)
    if not isinstance(high_risk_at, int | float) or not 0 < high_risk_at <= 1:
        raise InputError(
            f"high_risk_at {high_risk_at!r} must be a probability above 0, at most 1",
            where=where,
        )
    return Policy(
        default,
        by_specialty,
        by_type,
        frozenset(closed),
        high_risk=high_risk or HIGH_RISK_TOUCHPOINTS,
        high_risk_at=float(high_risk_at),
    )


def _touchpoints(entries: Any, where: str) -> tuple[Touchpoint, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise InputError("touchpoints must be a list of tables", where=where)
    touchpoints = []
    for n, entry in enumerate(entries, start=1):
        spot = f"{where} #{n}"
        try:
            channel = MessageChannel(str(entry["channel"]))
            lead = timedelta(hours=float(entry["lead_hours"]))
            name = str(entry["name"])
        except KeyError as exc:
            raise InputError(f"{exc.args[0]!r} is missing", where=spot) from None
        except ValueError as exc:
            raise InputError(str(exc), where=spot) from None
        touchpoints.append(
            Touchpoint(
                name,
                channel,
                lead,
                asks_reply=bool(entry.get("asks_reply", False)),
                same_day_only=bool(entry.get("same_day_only", False)),
            )
        )
    names = [t.name for t in touchpoints]
    if len(set(names)) != len(names):
        raise InputError(f"touchpoint names repeat: {names}", where=where)
    return tuple(touchpoints)
