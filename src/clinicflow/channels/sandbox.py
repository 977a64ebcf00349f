"""The sandbox channel: "delivers" SMS and e-mail by writing them to an outbox table.

It stands in for Twilio and SMTP in the demo and in tests, and behaves like them where it counts:
delivery happens in its own transaction (as a provider's would, outside ours), and `reconcile`
answers from the outbox whether an effect key was delivered. A batch (`deliver_many`) is one
transaction, so after a crash its messages are all in the outbox or none are. The outbox does not
make the key unique, so a double send would show as two rows.
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Table, func, insert, select
from sqlalchemy.orm import Session

from clinicflow.engine.handlers import EffectCall, HandlerEnv
from clinicflow.engine.payloads import OutgoingMessage
from clinicflow.engine.states import Delivery
from clinicflow.security.audit import Actor, auditable, record_access
from clinicflow.security.phi import PhiCipher
from clinicflow.store.engine import SandboxMessage, sandbox_message_aad

# Core executemany: one statement for a whole batch, no ORM objects to build and flush.
_OUTBOX: Table = SandboxMessage.__table__  # type: ignore[assignment]  # a Table, not a FromClause
_INSERT_OUTBOX = insert(_OUTBOX)


class SandboxMessageHandler:
    """`message.send` into the outbox; `delay_s` imitates a provider's latency (demos, tests)."""

    reaches_patient = True
    transactional = False

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
        """Write the message to the outbox and commit, as a provider accepting it would."""
        return self.deliver_many([(call, OutgoingMessage.from_payload(call.payload))], env)[0]

    def deliver_many(
        self, deliveries: Sequence[tuple[EffectCall, OutgoingMessage]], env: HandlerEnv
    ) -> list[dict[str, object]]:
        """Write these messages to the outbox in one transaction, audited in one row per
        automation that names every patient; `{"outbox_uid": ...}` per message, in order."""
        if self.delay_s > 0:
            time.sleep(self.delay_s * len(deliveries))
        now = env.clock.now()
        rows = [_outbox_row(env.cipher, call, message, now) for call, message in deliveries]
        by_automation: dict[str, list[OutgoingMessage]] = {}
        for call, message in deliveries:
            by_automation.setdefault(call.automation, []).append(message)
        with env.db.transaction() as session:
            if rows:
                session.execute(_INSERT_OUTBOX, rows)
            for automation, messages in by_automation.items():
                record_access(
                    session,
                    Actor.automation(automation),
                    "send",
                    auditable(m.for_ref for m in messages),
                    at=now,
                    detail={
                        "messages": len(messages),
                        "channels": dict(Counter(m.channel.value for m in messages)),
                    },
                    index_later=True,
                )
        return [{"outbox_uid": row["uid"]} for row in rows]

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:
        """Delivered if the outbox holds a message for this key, else provably not."""
        found = deliveries_of(env.session, call.key)
        return Delivery.DELIVERED if found else Delivery.NOT_DELIVERED


def _outbox_row(
    cipher: PhiCipher, call: EffectCall, message: OutgoingMessage, now: datetime
) -> dict[str, object]:
    """One outbox row, each part encrypted under its own message's uid."""
    uid = outbox_uid(now)
    return {
        "uid": uid,
        "effect_key": call.key,
        "channel": message.channel.value,
        "for_ref": message.for_ref,
        "recipient_enc": cipher.encrypt(message.to.encode(), sandbox_message_aad(uid, "to")),
        "subject_enc": cipher.encrypt_text(message.subject, sandbox_message_aad(uid, "subject")),
        "body_enc": cipher.encrypt(message.body.encode(), sandbox_message_aad(uid, "body")),
        "sent_at": now,
    }


def outbox_uid(now: datetime) -> str:
    """A new message's uid: 32 hex digits, the milliseconds since 1970 then 80 random bits.

    Time first, so a batch's rows go to the end of the uid index: with random uids each batch
    dirtied most of the index's 16 KiB pages, all rewritten to the WAL at its commit.
    """
    return f"{int(now.timestamp() * 1000) & (1 << 48) - 1:012x}{secrets.token_hex(10)}"


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A message in the sandbox outbox, decrypted."""

    id: int
    effect_key: str
    channel: str
    for_ref: str | None
    to: str
    subject: str | None
    body: str
    sent_at: datetime

    def to_json(self) -> dict[str, object]:
        """Plain JSON for `clinicflow outbox list --json`."""
        return {
            "id": self.id,
            "effect_key": self.effect_key,
            "channel": self.channel,
            "for": self.for_ref,
            "to": self.to,
            "subject": self.subject,
            "body": self.body,
            "sent_at": self.sent_at.isoformat(),
        }


def deliveries_of(session: Session, effect_key: str) -> int:
    """How many times the outbox holds a message for `effect_key` (more than one is a bug)."""
    stmt = select(func.count()).where(SandboxMessage.effect_key == effect_key)
    return int(session.scalar(stmt) or 0)


def list_outbox(
    session: Session, cipher: PhiCipher, *, reader: Actor, now: datetime, limit: int = 100
) -> list[OutboxMessage]:
    """The newest messages first, decrypted for a person allowed to see them (read audited)."""
    rows = list(
        session.scalars(select(SandboxMessage).order_by(SandboxMessage.id.desc()).limit(limit))
    )
    refs = auditable([f"SandboxMessage/{row.id}" for row in rows] + [r.for_ref for r in rows])
    if rows:
        record_access(session, reader, "read", refs, at=now)
    return [
        OutboxMessage(
            id=row.id,
            effect_key=row.effect_key,
            channel=row.channel,
            for_ref=row.for_ref,
            to=cipher.decrypt(row.recipient_enc, sandbox_message_aad(row.uid, "to")).decode(),
            subject=cipher.decrypt_text(row.subject_enc, sandbox_message_aad(row.uid, "subject")),
            body=cipher.decrypt(row.body_enc, sandbox_message_aad(row.uid, "body")).decode(),
            sent_at=row.sent_at,
        )
        for row in rows
    ]
