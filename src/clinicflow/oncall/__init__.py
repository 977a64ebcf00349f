"""The on-call rota: who answers urgent patient messages when (triage escalates to them)."""

from clinicflow.oncall.rota import (
    ON_CALL_POOL,
    Shift,
    add_shift,
    check_shift,
    on_call_at,
    remove_shift,
    shifts_between,
)

__all__ = [
    "ON_CALL_POOL",
    "Shift",
    "add_shift",
    "check_shift",
    "on_call_at",
    "remove_shift",
    "shifts_between",
]
