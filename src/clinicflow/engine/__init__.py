"""The automation engine: registry, triggers, runs, effects, events, work items and the queue.

Automations use the declaration (`Automation`, `Schedule`, `Event`, `Manual`, `Unit`), the
`RunContext` they are handed, and the key functions; faces (CLI, web) call the services.
"""

from clinicflow.engine.automation import Automation, Event, Manual, Schedule, Trigger, Unit
from clinicflow.engine.context import EffectRecorder, RunContext, TriggerInfo
from clinicflow.engine.effects import RecordedEffect, effect_counts
from clinicflow.engine.events import (
    EventInfo,
    NewEvent,
    dispatch_events,
    record_event,
    record_events,
)
from clinicflow.engine.execution import Execution, execute_effect, settle_unknown
from clinicflow.engine.handlers import (
    EffectCall,
    EffectHandler,
    HandlerEnv,
    HandlerRegistry,
    OutcomeUnknownError,
    default_handlers,
    register_effect_handler,
)
from clinicflow.engine.keys import (
    compose_key,
    effect_review_key,
    ehr_write_key,
    message_key,
    work_item_key,
)
from clinicflow.engine.payloads import (
    MESSAGE_SEND,
    WORK_ITEM_OPEN,
    MessageChannel,
    OutgoingMessage,
    WorkItemRequest,
)
from clinicflow.engine.queue import DEFAULT_QUEUE_NAME, QueueUnavailableError, TaskQueue, ping
from clinicflow.engine.reconcile import ReconcileReport, reconcile, settle_by_person
from clinicflow.engine.registry import EXTRA_AUTOMATIONS_ENV, Listing, LoadFailure, Registry
from clinicflow.engine.runner import (
    Enqueuer,
    InlineEnqueuer,
    RunOutcome,
    execute_run,
    request_run,
    run_now,
    run_outcome,
)
from clinicflow.engine.runs import RunRecord, get_run, list_runs
from clinicflow.engine.runtime import (
    DailyHookContext,
    EnginePolicy,
    EngineRuntime,
    register_daily_hook,
)
from clinicflow.engine.scheduler import TickReport, tick
from clinicflow.engine.states import (
    Delivery,
    EffectId,
    EffectState,
    EventId,
    Priority,
    RunId,
    RunState,
    TriggerKind,
    WorkItemId,
    WorkItemStatus,
)
from clinicflow.engine.switches import OWNER_UNCHANGED, Switch, all_switches, set_switch, switch_for
from clinicflow.engine.worker import DEFAULT_TICK_S, build_runtime, serve
from clinicflow.engine.workitems import (
    WorkItemView,
    add_note,
    claim_work_item,
    get_work_item,
    hand_to_pool,
    hold_work_item,
    list_open,
    open_work_item,
    resolve_work_item,
    start_work_item,
)

__all__ = [
    "DEFAULT_QUEUE_NAME",
    "DEFAULT_TICK_S",
    "EXTRA_AUTOMATIONS_ENV",
    "MESSAGE_SEND",
    "OWNER_UNCHANGED",
    "WORK_ITEM_OPEN",
    "Automation",
    "DailyHookContext",
    "Delivery",
    "EffectCall",
    "EffectHandler",
    "EffectId",
    "EffectRecorder",
    "EffectState",
    "EnginePolicy",
    "EngineRuntime",
    "Enqueuer",
    "Event",
    "EventId",
    "EventInfo",
    "Execution",
    "HandlerEnv",
    "HandlerRegistry",
    "InlineEnqueuer",
    "Listing",
    "LoadFailure",
    "Manual",
    "MessageChannel",
    "NewEvent",
    "OutcomeUnknownError",
    "OutgoingMessage",
    "Priority",
    "QueueUnavailableError",
    "ReconcileReport",
    "RecordedEffect",
    "Registry",
    "RunContext",
    "RunId",
    "RunOutcome",
    "RunRecord",
    "RunState",
    "Schedule",
    "Switch",
    "TaskQueue",
    "TickReport",
    "Trigger",
    "TriggerInfo",
    "TriggerKind",
    "Unit",
    "WorkItemId",
    "WorkItemRequest",
    "WorkItemStatus",
    "WorkItemView",
    "add_note",
    "all_switches",
    "build_runtime",
    "claim_work_item",
    "compose_key",
    "default_handlers",
    "dispatch_events",
    "effect_counts",
    "effect_review_key",
    "ehr_write_key",
    "execute_effect",
    "execute_run",
    "get_run",
    "get_work_item",
    "hand_to_pool",
    "hold_work_item",
    "list_open",
    "list_runs",
    "message_key",
    "open_work_item",
    "ping",
    "reconcile",
    "record_event",
    "record_events",
    "register_daily_hook",
    "register_effect_handler",
    "request_run",
    "resolve_work_item",
    "run_now",
    "run_outcome",
    "serve",
    "set_switch",
    "settle_by_person",
    "settle_unknown",
    "start_work_item",
    "switch_for",
    "tick",
    "work_item_key",
]
