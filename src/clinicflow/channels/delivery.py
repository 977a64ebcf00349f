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
"""

from __future__ import annotations

import html
import threading
from collections.abc import Mapping
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.orm import Session

from clinicflow.channels.consent import is_opted_out
from clinicflow.channels.pause import PAUSE_RECHECK, messages_pause
from clinicflow.channels.quiet_hours import QuietHours, next_allowed
from clinicflow.channels.sandbox import SandboxMessageHandler
from clinicflow.channels.smtp_email import SmtpEmail
from clinicflow.channels.twilio_sms import SmsError, TwilioSms
from clinicflow.engine.handlers import (
    DeferredError,
    EffectCall,
    HandlerEnv,
    VoidedError,
    register_effect_handler,
)
from clinicflow.engine.payloads import MESSAGE_SEND, MessageChannel, OutgoingMessage
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


def check_may_send(
    session: Session, message: OutgoingMessage, env: HandlerEnv, now: datetime
) -> None:
    """Raise DeferredError (not yet) or VoidedError (never) when the message must not go now."""
    pause = messages_pause(session)
    if pause is not None:
        raise DeferredError(
            f"Patient messages are paused (by {pause.by}): held until they resume.",
            until=now + PAUSE_RECHECK,
        )
    if message.not_after is not None and now > message.not_after:
        raise VoidedError("Too late to help: its time passed while it waited.")
    for visit in message.valid_while:
        row = session.get(Appointment, visit.ref.partition("/")[2])
        if row is None or row.status not in _UPCOMING:
            status = "removed" if row is None else row.status
            raise VoidedError(f"{visit.ref} is {status}: the reminder no longer applies.")
        if row.start_at != visit.start_at:
            raise VoidedError(f"{visit.ref} moved: the reminder for the old time is dropped.")
    digest = contact_digest(env.cipher, message.channel, message.to)
    if is_opted_out(session, message.channel, digest):
        what = "texts" if message.channel is MessageChannel.SMS else "e-mail"
        raise VoidedError(f"The patient opted out of {what}.")
    if message.channel is MessageChannel.SMS:
        zone = ZoneInfo(message.zone or env.settings.timezone)
        opens = next_allowed(now, QuietHours(), zone)
        if opens != now:
            raise DeferredError(
                "Quiet hours where the patient lives: held until 8:00.", until=opens
            )


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
        if message.channel is MessageChannel.SMS and env.settings.twilio_account_sid:
            return self._send_sms(call, env, message)
        if message.channel is MessageChannel.EMAIL and env.settings.smtp_host:
            return self._send_email(call, env, message)
        return self.sandbox.execute(call, env)

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
