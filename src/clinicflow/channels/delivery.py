"""`message.send`: the last checks before a patient is messaged, then the channel that sends it.

Checked at send time, not only when the message was planned, because time passes in between
(a retry waited, a worker was down, the practice paused messages, the patient replied STOP):
- the practice-wide pause holds every message (`pause`);
- a message past its `not_after`, or about a visit that moved or was cancelled, is voided;
- a contact that opted out of the channel gets nothing (voided, with the reason);
- an SMS outside 8:00-21:00 in the patient's own time zone is held until the window opens.

Then SMS goes through Twilio when it is configured, e-mail through SMTP, and otherwise both to the
sandbox outbox. After a crash mid-send, `reconcile` asks Twilio whether the text exists; SMTP
cannot be asked, so an e-mail whose fate is unclear goes to a person and is never resent blindly.
A batch (`execute_many`) is checked with a few queries in all (`check_many`) and its sandbox
messages written in one transaction; Twilio and SMTP messages still go one at a time.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from clinicflow.channels.consent import opted_out_among
from clinicflow.channels.pause import PAUSE_RECHECK, messages_pause
from clinicflow.channels.quiet_hours import QuietHours, next_allowed
from clinicflow.channels.sandbox import SandboxMessageHandler
from clinicflow.channels.smtp_email import SmtpEmail
from clinicflow.channels.twilio_sms import SmsError, TwilioSms
from clinicflow.engine.handlers import (
    CALL_EXECUTE,
    BatchOutcome,
    DeferredError,
    EffectCall,
    HandlerEnv,
    VoidedError,
    register_effect_handler,
)
from clinicflow.engine.payloads import MESSAGE_SEND, MessageChannel, OutgoingMessage, Purpose
from clinicflow.engine.states import Delivery
from clinicflow.errors import ClinicflowError
from clinicflow.security.audit import Actor, auditable, record_access
from clinicflow.security.phi import PhiCipher
from clinicflow.settings import Settings
from clinicflow.store.engine import Effect
from clinicflow.store.replica import Appointment

# Statuses in which a visit is still going to happen, so a reminder of it still makes sense.
_UPCOMING = frozenset({"proposed", "pending", "booked"})
_KIND_OF = {MessageChannel.SMS: "phone", MessageChannel.EMAIL: "email"}


def contact_digest(cipher: PhiCipher, channel: MessageChannel, to: str) -> str:
    """The blind index of a phone number or address, as consent and replies are keyed."""
    return cipher.blind_index(_KIND_OF[channel], to)


# A send-time verdict: None (send now), DeferredError (not yet) or VoidedError (never).
Verdict = DeferredError | VoidedError | None
_VISIT_CHUNK = 500  # appointment ids per IN list, well below both databases' parameter limits
# What a malformed payload (fields, instants) or a zone name ZoneInfo cannot load raises.
_LOAD_ERRORS = (ClinicflowError, LookupError, ValueError, OSError)


def check_may_send(
    session: Session, message: OutgoingMessage, env: HandlerEnv, now: datetime
) -> None:
    """Raise DeferredError (not yet) or VoidedError (never) when the message must not go now."""
    verdict = check_many(session, [message], env, now)[0]
    if verdict is not None:
        raise verdict


def check_many(
    session: Session, messages: Sequence[OutgoingMessage], env: HandlerEnv, now: datetime
) -> list[Verdict]:
    """The send-time verdict of each message, in order, in a few queries for the whole batch.

    Per message the checks run in this order, and the first that holds it decides: the pause,
    `not_after`, each visit in turn (gone or ended, then moved), the opt-out, quiet hours.
    A staff alert is not held by the pause, and only a notice waits for quiet hours to end
    (`Purpose`).
    """
    pause = messages_pause(session)
    held: Verdict = None
    if pause is not None:
        held = DeferredError(
            f"Patient messages are paused (by {pause.by}): held until they resume.",
            until=now + PAUSE_RECHECK,
        )
    visits = _visits(session, [v.ref for m in messages for v in m.valid_while])
    verdicts: list[Verdict] = [
        held
        if held is not None and m.purpose is not Purpose.STAFF_ALERT
        else _too_late_or_stale(m, visits, now)
        for m in messages
    ]
    digests = {
        n: contact_digest(env.cipher, m.channel, m.to)
        for n, m in enumerate(messages)
        if verdicts[n] is None
    }
    opted_out = {
        channel: opted_out_among(
            session, channel, [d for n, d in digests.items() if messages[n].channel is channel]
        )
        for channel in {messages[n].channel for n in digests}
    }
    zones: dict[str, ZoneInfo] = {}
    for n, digest in digests.items():
        message = messages[n]
        if digest in opted_out[message.channel]:
            what = "texts" if message.channel is MessageChannel.SMS else "e-mail"
            verdicts[n] = VoidedError(f"The patient opted out of {what}.")
        elif message.channel is MessageChannel.SMS and message.purpose is Purpose.NOTICE:
            name = message.zone or env.settings.timezone
            zone = zones.get(name)
            if zone is None:
                zone = zones[name] = ZoneInfo(name)
            opens = next_allowed(now, QuietHours(), zone)
            if opens != now:
                verdicts[n] = DeferredError(
                    "Quiet hours where the patient lives: held until 8:00.", until=opens
                )
    return verdicts


_VISITS = select(Appointment.fhir_id, Appointment.status, Appointment.start_at).where(
    Appointment.fhir_id.in_(bindparam("ids", expanding=True))
)


def _visits(session: Session, refs: Sequence[str]) -> dict[str, tuple[str, datetime | None]]:
    """Status and start of each listed visit that still exists, by fhir id."""
    ids = sorted({ref.partition("/")[2] for ref in refs})
    found: dict[str, tuple[str, datetime | None]] = {}
    for start in range(0, len(ids), _VISIT_CHUNK):
        rows = session.execute(_VISITS, {"ids": ids[start : start + _VISIT_CHUNK]})
        found.update((row.fhir_id, (row.status, row.start_at)) for row in rows)
    return found


def _too_late_or_stale(
    message: OutgoingMessage, visits: Mapping[str, tuple[str, datetime | None]], now: datetime
) -> VoidedError | None:
    """Void a message past its deadline, or about a visit that is gone, ended or moved."""
    if message.not_after is not None and now > message.not_after:
        return VoidedError("Too late to help: its time passed while it waited.")
    for visit in message.valid_while:
        row = visits.get(visit.ref.partition("/")[2])
        if row is None or row[0] not in _UPCOMING:
            status = "removed" if row is None else row[0]
            return VoidedError(f"{visit.ref} is {status}: the reminder no longer applies.")
        if row[1] != visit.start_at:
            return VoidedError(f"{visit.ref} moved: the reminder for the old time is dropped.")
    return None


def is_sandboxed(message: OutgoingMessage, settings: Settings) -> bool:
    """True when no provider is configured for the message's channel: it goes to the outbox."""
    if message.channel is MessageChannel.SMS:
        return not settings.twilio_account_sid
    return not settings.smtp_host


def _for_the_batch(call: EffectCall, settings: Settings) -> OutgoingMessage | None:
    """The message when it can go out in a sandbox batch; None leaves it to `execute`, alone.

    A payload or time zone that does not load is left to `execute` too, so that it fails (or is
    voided by an earlier check) exactly as it would on its own.
    """
    try:
        message = OutgoingMessage.from_payload(call.payload)
        if message.channel is MessageChannel.SMS:
            ZoneInfo(message.zone or settings.timezone)
    except _LOAD_ERRORS:
        return None
    return message if is_sandboxed(message, settings) else None


class MessageRouter:
    """`message.send` to Twilio, SMTP or the sandbox outbox, after the send-time checks."""

    reaches_patient = True
    transactional = False

    def __init__(self, sandbox: SandboxMessageHandler | None = None) -> None:
        self.sandbox = sandbox or SandboxMessageHandler()
        self._lock = threading.Lock()
        self._twilio: dict[tuple[str, str, str | None, float], TwilioSms] = {}

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
        """Check, then send once through the configured channel."""
        message = OutgoingMessage.from_payload(call.payload)
        # Its own short transaction: on SQLite the handler's session holds the write lock from
        # its first statement, and the sandbox writes the outbox in a transaction of its own.
        with env.db.transaction() as session:
            check_may_send(session, message, env, env.clock.now())
        if is_sandboxed(message, env.settings):
            return self.sandbox.execute(call, env)
        if message.channel is MessageChannel.SMS:
            return self._send_sms(call, env, message)
        return self._send_email(call, env, message)

    def execute_many(self, calls: Sequence[EffectCall], env: HandlerEnv) -> list[BatchOutcome]:
        """Check a batch in one transaction, then deliver what goes to the sandbox in one go.

        Messages for Twilio or SMTP are left to `execute` (CALL_EXECUTE), one at a time, rather
        than sent here: `_sent` keeps the provider's id and audits the send in the transaction
        that marks the effect done, which a batch handler may not write to, and a provider paced
        at a text a second needs the engine's lease check between sends, as `execute` gets it.
        So they keep exactly today's path and guarantees, and only the outbox is batched.
        """
        outcomes: list[BatchOutcome] = [CALL_EXECUTE] * len(calls)
        batch = [
            (n, call, m)
            for n, call in enumerate(calls)
            if (m := _for_the_batch(call, env.settings)) is not None
        ]
        if not batch:
            return outcomes
        with env.db.transaction() as session:
            verdicts = check_many(session, [m for _, _, m in batch], env, env.clock.now())
        cleared: list[tuple[int, EffectCall, OutgoingMessage]] = []
        for item, verdict in zip(batch, verdicts, strict=True):
            if verdict is None:
                cleared.append(item)
            else:
                outcomes[item[0]] = verdict
        delivered = self.sandbox.deliver_many([(call, m) for _, call, m in cleared], env)
        for (n, _, _), result in zip(cleared, delivered, strict=True):
            outcomes[n] = result
        return outcomes

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:
        """After a crash mid-send: did the patient get it?"""
        message = OutgoingMessage.from_payload(call.payload)
        if message.channel is MessageChannel.SMS and env.settings.twilio_account_sid:
            return self._find_sms(call, env, message)
        if message.channel is MessageChannel.EMAIL and env.settings.smtp_host:
            return Delivery.UNKNOWN  # SMTP cannot be asked: a person decides, never a resend
        return self.sandbox.reconcile(call, env)

    def twilio(self, settings: Settings, env: HandlerEnv) -> TwilioSms:
        """One Twilio client per account and sender, shared by the worker's threads (and so is
        its rate limiter)."""
        token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else ""
        config = (
            settings.twilio_account_sid or "",
            token,
            settings.twilio_api_url,
            settings.sms_per_second,
        )
        with self._lock:
            client = self._twilio.get(config)
            if client is None:
                client = self._twilio[config] = TwilioSms.from_settings(settings, env.clock)
            return client

    def _send_sms(
        self, call: EffectCall, env: HandlerEnv, message: OutgoingMessage
    ) -> Mapping[str, object]:
        sent = self.twilio(env.settings, env).send(message.to, message.body, key=call.key)
        _sent(env, call, message, provider_ref=sent.sid, channel="twilio")
        return {"message_sid": sent.sid, "status": sent.status}

    def _find_sms(self, call: EffectCall, env: HandlerEnv, message: OutgoingMessage) -> Delivery:
        effect = env.session.get_one(Effect, call.effect_id)
        try:
            found = self.twilio(env.settings, env).find_sent(
                call.key, message.to, effect.created_at, body=message.body
            )
        except (SmsError, ClinicflowError):
            return Delivery.UNKNOWN
        if found is None:
            return Delivery.NOT_DELIVERED
        _sent(env, call, message, provider_ref=found.sid, channel="twilio")
        env.session.commit()  # the reconciler's session: keep the provider's id with the effect
        return Delivery.DELIVERED

    def _send_email(
        self, call: EffectCall, env: HandlerEnv, message: OutgoingMessage
    ) -> Mapping[str, object]:
        if not message.unsubscribe_url:
            raise ClinicflowError(
                "This e-mail has no unsubscribe link, which patient e-mail must carry.",
                code="email.no_unsubscribe",
            )
        smtp = SmtpEmail.from_settings(env.settings, clock=env.clock)
        sent = smtp.send(
            message.to,
            message.subject or "A message from your care team",
            message.body,
            message.html or f"<pre>{html.escape(message.body)}</pre>",
            key=call.key,
            unsubscribe_url=message.unsubscribe_url,
        )
        _sent(env, call, message, provider_ref=sent.message_id, channel="smtp")
        return {"message_id": sent.message_id}


def _sent(
    env: HandlerEnv, call: EffectCall, message: OutgoingMessage, *, provider_ref: str, channel: str
) -> None:
    """Keep the provider's id with the effect (status callbacks find it) and audit the send, in
    the transaction that marks the effect done."""
    env.session.execute(
        update(Effect).where(Effect.id == call.effect_id).values(provider_ref=provider_ref)
    )
    record_access(
        env.session,
        Actor.automation(call.automation),
        "send",
        auditable([message.for_ref]),
        at=env.clock.now(),
        detail={"channel": message.channel.value, "via": channel},
    )


register_effect_handler(MESSAGE_SEND, MessageRouter())
