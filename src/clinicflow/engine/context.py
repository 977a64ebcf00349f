"""What an automation's `run(ctx)` is handed: the store, the time, and a recorder for effects."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from clinicflow.clock import Clock
from clinicflow.engine.automation import Automation
from clinicflow.engine.effects import NewEffect, RecordedEffect, record_effect, record_effects
from clinicflow.engine.events import EventInfo
from clinicflow.engine.handlers import HandlerRegistry
from clinicflow.engine.payloads import (
    MESSAGE_SEND,
    WORK_ITEM_OPEN,
    MessageChannel,
    OutgoingMessage,
    WorkItemRequest,
)
from clinicflow.engine.states import Priority, RunId, TriggerKind
from clinicflow.errors import EngineError
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that adds the run's ids to each record, keeping the caller's own `extra`."""

    def process(self, msg: object, kwargs: MutableMapping[str, Any]) -> tuple[object, Any]:
        """Merge the run's ids under the caller's extra (Python 3.11 would replace them)."""
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


@dataclass(frozen=True, slots=True)
class TriggerInfo:
    """Why this run happens: a cron instant, an event, or a person's request."""

    kind: TriggerKind
    key: str
    scheduled_for: datetime
    event: EventInfo | None = None
    # Every event of a coalescing run (`Event(..., coalesce=True)`), `event` first; else
    # `(event,)` for an event run and () for the others.
    events: tuple[EventInfo, ...] = ()


class EffectRecorder:
    """`ctx.effects`: effects are recorded in the run's transaction, carried out after it commits.

    Each effect has an idempotency key from a key function (`clinicflow.engine.keys`); asking
    twice for the same key records nothing new. In a dry run effects are recorded as `dry_run`:
    what would have happened, never sent or written. Summaries are shown on run pages: no PHI.
    """

    def __init__(
        self,
        session: Session,
        *,
        cipher: PhiCipher,
        handlers: HandlerRegistry,
        run_id: RunId,
        automation: str,
        owner: str,
        dry_run: bool,
        now: datetime,
    ) -> None:
        self._session = session
        self._cipher = cipher
        self._handlers = handlers
        self._run_id = run_id
        self._automation = automation
        self._owner = owner
        self._dry_run = dry_run
        self._now = now
        self.recorded: list[RecordedEffect] = []

    def record(
        self,
        kind: str,
        *,
        key: str,
        payload: Mapping[str, object],
        summary: str = "",
        focus: str | None = None,
    ) -> RecordedEffect:
        """Record an effect of any registered kind (e.g. `ehr.write_back`).

        `focus` ("Appointment/123"): what it acts on; if that goes away first, it is voided.
        """
        handler = self._handlers.get(kind)
        effect = record_effect(
            self._session,
            self._cipher,
            run_id=self._run_id,
            automation=self._automation,
            kind=kind,
            key=key,
            payload=payload,
            summary=summary or kind,
            reaches_patient=handler.reaches_patient,
            dry_run=self._dry_run,
            now=self._now,
            focus=focus,
        )
        self.recorded.append(effect)
        return effect

    def send_message(
        self,
        *,
        key: str,
        channel: MessageChannel | str,
        to: str,
        body: str,
        subject: str | None = None,
        for_ref: str | None = None,
        focus: str | None = None,
    ) -> RecordedEffect:
        """Send a patient an SMS or e-mail (`key` from `keys.message_key`)."""
        message = OutgoingMessage(MessageChannel(channel), to, body, subject, for_ref, focus)
        return self.send(key, message)

    def send(self, key: str, message: OutgoingMessage) -> RecordedEffect:
        """Send a message built whole, with the send-time checks it carries (zone, deadline,
        the visits it is about); `key` from `keys.reminder_key` or `keys.message_key`."""
        return self.send_all([(key, message)])[0]

    def send_all(self, messages: Sequence[tuple[str, OutgoingMessage]]) -> list[RecordedEffect]:
        """`send` for many messages at once, recorded in a few multi-row statements."""
        handler = self._handlers.get(MESSAGE_SEND)
        recorded = record_effects(
            self._session,
            self._cipher,
            [
                NewEffect(
                    MESSAGE_SEND,
                    key,
                    message.to_payload(),
                    _message_summary(message),
                    handler.reaches_patient,
                    message.focus,
                )
                for key, message in messages
            ],
            run_id=self._run_id,
            automation=self._automation,
            dry_run=self._dry_run,
            now=self._now,
        )
        self.recorded.extend(recorded)
        return recorded

    def open_work_item(
        self,
        *,
        key: str,
        description: str,
        pool: str | None = None,
        priority: Priority = Priority.ROUTINE,
        due_at: datetime | None = None,
        focus: str | None = None,
        for_ref: str | None = None,
    ) -> RecordedEffect:
        """Ask a person to do something (`key` from `keys.work_item_key`); pool: the owner's."""
        request = WorkItemRequest(
            pool or self._owner, description, priority, due_at, focus, for_ref
        )
        summary = f"work item for {request.pool}" + (f" about {focus}" if focus else "")
        return self.record(
            WORK_ITEM_OPEN, key=key, payload=request.to_payload(), summary=summary, focus=focus
        )


def _message_summary(message: OutgoingMessage) -> str:
    summary = f"{message.channel.value} to {message.for_ref or 'a patient'}"
    return summary + (f" about {message.focus}" if message.focus else "")


@dataclass
class RunContext:
    """Everything a run function may use. It must not commit: the engine owns the transaction.

    `session` is the run's transaction. On SQLite its write lock is taken at its first
    statement and held until the run commits, so an automation that reads a lot before it writes
    reads through `reads` first: a snapshot that holds no lock (on a SQLite file; elsewhere the
    run's own session), so other workers' writes (sending, replies, the web app) go on meanwhile.
    What it then writes must hold against later changes: insert-if-absent claims and keys,
    compare-and-set states, never "I read it was free, so it is mine".
    """

    session: Session
    now: datetime
    clock: Clock
    zone: ZoneInfo
    settings: Settings
    cipher: PhiCipher
    logger: RunLogger
    effects: EffectRecorder
    run_id: RunId
    automation: Automation
    owner: str
    trigger: TriggerInfo
    dry_run: bool
    actor: str
    # The names of the automations loaded beside this one (one may hand work to another).
    loaded: frozenset[str] = frozenset()
    snapshot: Session | None = None
    _units: dict[str, int] = field(default_factory=dict)

    @property
    def reads(self) -> Session:
        """Where to read what the run will decide on before it writes (see the class docs)."""
        return self.snapshot if self.snapshot is not None else self.session

    def count(self, unit: str, n: int = 1) -> None:
        """Count `n` units of work of a declared unit (they feed the impact ledger)."""
        try:
            self.automation.unit(unit)
        except KeyError as exc:
            raise EngineError(str(exc.args[0]), code="automation.unknown_unit") from None
        if n < 0:
            raise EngineError(f"Cannot count {n} units of {unit!r}.", code="automation.bad_count")
        self._units[unit] = self._units.get(unit, 0) + n

    @property
    def units(self) -> dict[str, int]:
        """Units counted so far."""
        return dict(self._units)
