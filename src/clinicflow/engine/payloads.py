"""Payloads of the effect kinds the engine offers through `ctx.effects` (stored encrypted)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from clinicflow.engine.states import Priority
from clinicflow.errors import InputError

MESSAGE_SEND = "message.send"
WORK_ITEM_OPEN = "work_item.open"


class MessageChannel(StrEnum):
    """How a message reaches a patient."""

    SMS = "sms"
    EMAIL = "email"


def _text(payload: Mapping[str, object], name: str, kind: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise InputError(f"`{name}` is missing or not text", where=f"{kind} payload")
    return value


def _optional(payload: Mapping[str, object], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) and value else None


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A message to one patient: the payload of `message.send`."""

    channel: MessageChannel
    to: str
    body: str
    subject: str | None = None
    for_ref: str | None = None
    focus: str | None = None

    def to_payload(self) -> dict[str, object]:
        """The JSON stored (encrypted) with the effect."""
        return {
            "channel": self.channel.value,
            "to": self.to,
            "body": self.body,
            "subject": self.subject,
            "for_ref": self.for_ref,
            "focus": self.focus,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> OutgoingMessage:
        """Parse a stored payload; InputError says which field is wrong."""
        channel = _text(payload, "channel", MESSAGE_SEND)
        if channel not in {c.value for c in MessageChannel}:
            raise InputError(f"unknown channel {channel!r}", where=f"{MESSAGE_SEND} payload")
        return cls(
            channel=MessageChannel(channel),
            to=_text(payload, "to", MESSAGE_SEND),
            body=_text(payload, "body", MESSAGE_SEND),
            subject=_optional(payload, "subject"),
            for_ref=_optional(payload, "for_ref"),
            focus=_optional(payload, "focus"),
        )


@dataclass(frozen=True, slots=True)
class WorkItemRequest:
    """A work item a run asks for: the payload of `work_item.open` (its key is the effect's key)."""

    pool: str
    description: str
    priority: Priority = Priority.ROUTINE
    due_at: datetime | None = None
    focus: str | None = None
    for_ref: str | None = None

    def to_payload(self) -> dict[str, object]:
        """The JSON stored (encrypted) with the effect."""
        return {
            "pool": self.pool,
            "description": self.description,
            "priority": self.priority.value,
            "due_at": self.due_at.isoformat() if self.due_at else None,
            "focus": self.focus,
            "for_ref": self.for_ref,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, object]) -> WorkItemRequest:
        """Parse a stored payload; InputError says which field is wrong."""
        due = _optional(payload, "due_at")
        priority = _optional(payload, "priority") or Priority.ROUTINE.value
        if priority not in {p.value for p in Priority}:
            raise InputError(f"unknown priority {priority!r}", where=f"{WORK_ITEM_OPEN} payload")
        return cls(
            pool=_text(payload, "pool", WORK_ITEM_OPEN),
            description=_text(payload, "description", WORK_ITEM_OPEN),
            priority=Priority(priority),
            due_at=datetime.fromisoformat(due) if due else None,
            focus=_optional(payload, "focus"),
            for_ref=_optional(payload, "for_ref"),
        )
