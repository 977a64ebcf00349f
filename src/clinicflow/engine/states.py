"""The names the engine's ledgers use for states, triggers and priorities."""

from __future__ import annotations

from enum import StrEnum
from typing import NewType

RunId = NewType("RunId", int)
EffectId = NewType("EffectId", int)
EventId = NewType("EventId", int)
WorkItemId = NewType("WorkItemId", int)


class TriggerKind(StrEnum):
    """What made a run happen."""

    CRON = "cron"
    EVENT = "event"
    MANUAL = "manual"


class RunState(StrEnum):
    """A run's life: queued → running → succeeded | failed."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class EffectState(StrEnum):
    """An effect's life; see `clinicflow.engine.execution` for the protocol between them."""

    PENDING = "pending"  # recorded, waiting for a worker
    CLAIMED = "claimed"  # a worker holds the lease, nothing sent yet
    IN_FLIGHT = "in_flight"  # the external call may have happened
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"  # a crash left it ambiguous; a handler or a person decides
    DRY_RUN = "dry_run"  # what would have happened; never executed
    VOIDED = "voided"  # what it was about went away before it went out (a deleted visit)


TERMINAL_EFFECT_STATES = frozenset(
    {EffectState.DONE, EffectState.FAILED, EffectState.DRY_RUN, EffectState.VOIDED}
)


class WorkItemStatus(StrEnum):
    """FHIR Task.status, the subset a review queue needs."""

    REQUESTED = "requested"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in-progress"
    ON_HOLD = "on-hold"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


OPEN_WORK_ITEM_STATUSES = frozenset(
    {
        WorkItemStatus.REQUESTED,
        WorkItemStatus.ACCEPTED,
        WorkItemStatus.IN_PROGRESS,
        WorkItemStatus.ON_HOLD,
    }
)


class Priority(StrEnum):
    """FHIR request priority, lowest to highest."""

    ROUTINE = "routine"
    URGENT = "urgent"
    ASAP = "asap"
    STAT = "stat"


class Delivery(StrEnum):
    """A handler's answer to "did this effect reach its destination?"."""

    DELIVERED = "delivered"
    NOT_DELIVERED = "not_delivered"
    UNKNOWN = "unknown"
