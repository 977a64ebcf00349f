"""Effect handlers: who carries out each kind of effect, and whether it reaches a patient.

A handler is registered per kind with `register_effect_handler(kind, handler)`, usually when its
module is imported (the registry imports every automation, and `default_handlers()` imports the
built-in handler modules below), much as huey tasks register on import.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Protocol, TypeGuard

from sqlalchemy.orm import Session

from clinicflow.clock import Clock
from clinicflow.engine.states import Delivery, EffectId, RunId
from clinicflow.errors import EngineError
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database

# Modules that register handlers on import. Named, not imported, because they sit above the engine
# (a channel implements the engine's protocol), so the engine must not import them directly.
BUILTIN_HANDLER_MODULES = (
    "clinicflow.engine.builtin",
    "clinicflow.channels.delivery",
    "clinicflow.ehr.writeback",
)


@dataclass(frozen=True, slots=True)
class EffectCall:
    """One effect as its handler sees it: identity, attempt number and the decrypted payload."""

    effect_id: EffectId
    key: str
    kind: str
    automation: str
    run_id: RunId
    attempt: int
    payload: Mapping[str, object]


@dataclass(frozen=True, slots=True)
class HandlerEnv:
    """What a handler may use. `session` is the transaction that marks the effect done."""

    session: Session
    db: Database
    cipher: PhiCipher
    clock: Clock
    settings: Settings


class OutcomeUnknownError(EngineError):
    """Raised by a handler that cannot tell whether its call took effect (e.g. a timeout)."""

    code = "effect.outcome_unknown"


class DeferredError(EngineError):
    """Raised by a handler before its call when the effect may not happen yet (quiet hours, a
    practice-wide pause): it waits until `until` and no attempt is spent."""

    code = "effect.deferred"

    def __init__(self, message: str, *, until: datetime) -> None:
        super().__init__(message)
        self.until = until


class VoidedError(EngineError):
    """Raised by a handler before its call when the effect must no longer happen (the visit it
    reminds of moved, the patient opted out, it is too late to help): it is voided, not failed,
    so nobody is asked to look at it."""

    code = "effect.voided"


class EffectHandler(Protocol):
    """Carries out one kind of effect.

    `transactional` handlers write only through `env.session`, so their work commits together with
    the effect's `done` and a crash can only mean "nothing happened": such effects are retried.
    Other handlers call the outside world (SMS, e-mail, an EHR) and must answer `reconcile`.
    `execute` returns a small JSON-able result without PHI (e.g. a provider's message id). It raises
    `ClinicflowError` (with `retryable`) only when the effect surely did not happen, and
    `OutcomeUnknownError` when it cannot tell; any other exception is treated like the latter.
    Before its call it may raise `DeferredError` (not yet) or `VoidedError` (never).
    Its run time must stay well under the effect lease (`Settings.effect_lease_s`).
    """

    @property
    def reaches_patient(self) -> bool:
        """True when a patient would receive the effect (never blindly retried)."""
        ...

    @property
    def transactional(self) -> bool:
        """True when the handler's work commits atomically with the effect's `done`."""
        ...

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object] | None:
        """Carry out the effect once."""
        ...

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:
        """After a crash mid-call: did the effect reach its destination?"""
        ...


class Batching(Enum):
    """What `execute_many` may answer for a call it would rather leave to `execute`."""

    CALL_EXECUTE = "call-execute"


# The engine then calls `execute` for that effect alone, exactly as it would without a batch.
CALL_EXECUTE = Batching.CALL_EXECUTE

# One call's outcome in a batch: what `execute` would have returned or raised, or CALL_EXECUTE.
BatchOutcome = Mapping[str, object] | None | BaseException | Batching


class BatchEffectHandler(EffectHandler, Protocol):
    """A handler that can also carry out many effects of its kind in one go (optional).

    `execute_many` gives one outcome per call, in order: the result `execute` would have returned,
    the exception `execute` would have raised for that call (DeferredError, VoidedError,
    ClinicflowError, OutcomeUnknownError or any other), or CALL_EXECUTE to have the engine call
    `execute` for it alone (a provider that must be paced one message at a time).
    Only for handlers that are not `transactional`: it must not write through `env.session`,
    because the engine marks the batch done in a transaction of its own afterwards. The crash
    rules of `execute` hold per effect: after a crash, or when `execute_many` itself raises, every
    effect of the batch is asked `reconcile`, so whatever the outside world accepted before then
    must be findable effect by effect. Its run time counts against the lease like `execute`'s.
    """

    def execute_many(self, calls: Sequence[EffectCall], env: HandlerEnv) -> list[BatchOutcome]:
        """Carry out each effect once; one outcome per call, in order."""
        ...


def can_execute_many(handler: EffectHandler) -> TypeGuard[BatchEffectHandler]:
    """True when the engine may hand this handler a batch through `execute_many`."""
    return not handler.transactional and callable(getattr(handler, "execute_many", None))


class HandlerRegistry:
    """Handlers by effect kind."""

    def __init__(self, handlers: Mapping[str, EffectHandler] | None = None) -> None:
        self._handlers: dict[str, EffectHandler] = dict(handlers or {})

    def register(self, kind: str, handler: EffectHandler, *, replace: bool = False) -> None:
        """Register `handler` for `kind`; registering a kind twice is an error unless `replace`."""
        if kind in self._handlers and not replace and self._handlers[kind] is not handler:
            raise EngineError(
                f"Effect kind {kind!r} already has a handler "
                f"({type(self._handlers[kind]).__name__}); pass replace=True to swap it.",
                code="engine.handler_conflict",
            )
        self._handlers[kind] = handler

    def get(self, kind: str) -> EffectHandler:
        """The handler for `kind`; EngineError names the known kinds otherwise."""
        try:
            return self._handlers[kind]
        except KeyError:
            known = ", ".join(sorted(self._handlers)) or "none"
            raise EngineError(
                f"No handler is registered for effect kind {kind!r} (known: {known}).",
                code="engine.no_handler",
            ) from None

    def kinds(self) -> list[str]:
        """Registered kinds, sorted."""
        return sorted(self._handlers)

    def copy(self) -> HandlerRegistry:
        """An independent registry with the same handlers (tests add their own to a copy)."""
        return HandlerRegistry(self._handlers)


_DEFAULT = HandlerRegistry()


def register_effect_handler(kind: str, handler: EffectHandler, *, replace: bool = False) -> None:
    """Register a handler in the process-wide registry the worker and the CLI use."""
    _DEFAULT.register(kind, handler, replace=replace)


def default_handlers() -> HandlerRegistry:
    """The process-wide registry, with the built-in handlers imported."""
    for module in BUILTIN_HANDLER_MODULES:
        importlib.import_module(module)
    return _DEFAULT
