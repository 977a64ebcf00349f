"""Twilio's webhooks: the texts patients send us, and news of the texts we sent.

Twilio signs each request with the account's auth token over the URL it was given and the form
fields. That URL is our PUBLIC_URL plus the path and query: behind a proxy the request's own URL
is different, so it is rebuilt from the setting rather than read from the request. A request
without a valid signature is refused before anything touches the database.

An inbound text is committed before we answer: a 2xx tells Twilio the message was taken, so when
the database fails we answer 503 and never 200. What a reply does (confirm, cancel, a work item)
happens in automations that subscribe to `inbound.received`, not here; Twilio itself answers
STOP and START, so we add words only to HELP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from twilio.twiml.messaging_response import MessagingResponse

from clinicflow.channels.consent import ConsentSource, record_consent
from clinicflow.channels.inbound import store_inbound
from clinicflow.channels.replies import Intent, normalise
from clinicflow.channels.sms_webhook import (
    FINAL_STATUSES,
    INBOUND_PATH,
    KEY_TAG_PARAM,
    STATUS_PATH,
    StatusUpdate,
    callback_key_tag,
    parse_inbound,
    parse_status,
    verify_signature,
)
from clinicflow.engine.effects import decrypt_payload
from clinicflow.engine.keys import work_item_key
from clinicflow.engine.payloads import MessageChannel
from clinicflow.engine.workitems import open_work_item
from clinicflow.errors import InputError, SecurityError
from clinicflow.security.audit import Actor, auditable, record_access
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.store.engine import Effect
from clinicflow.store.messaging import ConsentChange
from clinicflow.web.auth import public
from clinicflow.web.health import State

logger = logging.getLogger(__name__)
router = APIRouter(
    dependencies=[Depends(public("Twilio: every request is checked by its X-Twilio-Signature"))]
)

SIGNATURE_HEADER = "X-Twilio-Signature"
STATUS_ACTOR = "system:twilio-status"
UNDELIVERED_POOL = "front-desk"
# Final statuses that mean the patient did not get the text.
UNDELIVERED = frozenset({"undelivered", "failed"})
OPTED_OUT_CODE = 21610  # "Attempt to send to unsubscribed recipient"
# Twilio's most common delivery error codes (https://www.twilio.com/docs/api/errors), in words.
_ERROR_WORDS = {
    21610: "the number opted out of texts (the patient replied STOP)",
    30003: "the phone was off or out of reach",
    30004: "the recipient's carrier blocked the text",
    30005: "the number does not exist or is no longer in service",
    30006: "the number is a landline or cannot receive texts",
    30007: "the carrier filtered the text as unwanted",
    30008: "the carrier gave no reason",
}


async def twilio_form(request: Request) -> dict[str, str]:
    """The POSTed fields: Twilio sends application/x-www-form-urlencoded, always ASCII."""
    body = (await request.body()).decode("latin-1")
    # An MMS with only a picture has an empty Body, which must still be signed and stored.
    return dict(parse_qsl(body, keep_blank_values=True))


def signed_url(public_url: str, path: str, query: str) -> str:
    """The URL Twilio signed: where we told it to post, i.e. PUBLIC_URL, the path and the query."""
    return public_url.rstrip("/") + path + (f"?{query}" if query else "")


def verified_form(
    request: Request, state: State, form: Annotated[dict[str, str], Depends(twilio_form)]
) -> dict[str, str]:
    """The form fields of a request Twilio signed; 503 when unconfigured, 403 when not signed."""
    token = state.settings.twilio_auth_token
    if token is None:
        raise HTTPException(
            503,
            "Twilio webhooks are not set up on this server: CLINICFLOW_TWILIO_AUTH_TOKEN is not "
            "set, so requests cannot be checked.",
        )
    url = signed_url(state.settings.public_url, request.url.path, request.url.query)
    signature = request.headers.get(SIGNATURE_HEADER)
    if not verify_signature(url, form, signature, token.get_secret_value()):
        # The hint is for the administrator's log, not for whoever sent the request.
        logger.warning(
            "twilio webhook refused: signature does not match; check CLINICFLOW_PUBLIC_URL is "
            "the URL configured at Twilio and CLINICFLOW_TWILIO_AUTH_TOKEN is the account's",
            extra={"path": request.url.path, "signed": signature is not None},
        )
        raise HTTPException(403, "This request is not signed by Twilio.")
    return form


TwilioForm = Annotated[dict[str, str], Depends(verified_form)]


def webhook_cipher(state: State) -> PhiCipher:
    """The PHI cipher, from the keys as they are now: read per request, so a key rotation
    applies without a restart; never created here (the install creates the key)."""
    try:
        return PhiCipher(keyring_from_settings(state.settings, create=False))
    except SecurityError as exc:
        logger.error("twilio webhook cannot encrypt: no PHI key", extra={"error": exc.message})
        raise HTTPException(
            503, "This server cannot store messages yet (its encryption key is not set up)."
        ) from exc


Cipher = Annotated[PhiCipher, Depends(webhook_cipher)]


def help_text(body: str, practice_name: str | None) -> str:
    """The answer to HELP: who is texting, what replies do, how to stop (Spanish for AYUDA)."""
    if normalise(body) == "ayuda":
        who = practice_name or "su consultorio"
        return (
            f"{who}: recordatorios de citas. Responda C para confirmar, X para cancelar, R para "
            "cambiar la cita. Responda STOP para dejar de recibir mensajes."
        )
    who = practice_name or "our office"
    return (
        f"{who}: appointment reminders. Reply C to confirm, X to cancel, R to reschedule. "
        "Reply STOP to stop these texts."
    )


def twiml(message: str | None = None) -> Response:
    """A TwiML answer: one message back to the sender, or nothing."""
    reply = MessagingResponse()
    if message is not None:
        reply.message(message)
    return Response(str(reply), media_type="text/xml")


def _unavailable(what: str) -> HTTPException:
    return HTTPException(
        503,
        f"The database is not answering, so the {what} was not stored; Twilio may retry.",
        headers={"Retry-After": "30"},
    )


@router.post(INBOUND_PATH, response_class=Response)
def inbound_sms(form: TwilioForm, state: State, cipher: Cipher) -> Response:
    """A patient's text: stored (once) and committed, then answered with TwiML."""
    try:
        sms = parse_inbound(form, received_at=state.clock.now())
    except InputError as exc:
        raise HTTPException(400, str(exc)) from exc
    try:
        with state.db.transaction() as session:
            stored = store_inbound(
                session,
                cipher,
                provider_id=sms.message_sid,
                channel=MessageChannel.SMS.value,
                sender=sms.from_,
                contact_digest=cipher.blind_index("phone", sms.from_),
                body=sms.body,
                received_at=sms.received_at,
            )
    except SQLAlchemyError as exc:
        logger.exception("inbound text not stored", extra={"message_sid": sms.message_sid})
        raise _unavailable("text") from exc
    logger.info(
        "inbound text stored",
        extra={
            "message_sid": sms.message_sid,
            "new": stored.created,
            "intent": stored.intent.value,
        },
    )
    if stored.intent is Intent.HELP:
        # Answered again on a redelivery too: the first answer may be what got lost.
        return twiml(help_text(sms.body, _practice_name(state)))
    return twiml()


def _practice_name(state: State) -> str | None:
    # No such setting yet; the practice's name is used here as soon as one exists.
    name = getattr(state.settings, "practice_name", None)
    return name if isinstance(name, str) and name else None


@router.post(STATUS_PATH, response_class=Response)
def message_status(form: TwilioForm, request: Request, state: State, cipher: Cipher) -> Response:
    """Twilio's news about a text we sent: its delivery status, and a work item if it failed."""
    try:
        update = parse_status(form, key_tag=request.query_params.get(KEY_TAG_PARAM))
    except InputError as exc:
        raise HTTPException(400, str(exc)) from exc
    try:
        with state.db.transaction() as session:
            record_delivery(session, cipher, update, now=state.clock.now())
    except SQLAlchemyError as exc:
        logger.exception("status callback not stored", extra={"message_sid": update.message_sid})
        raise _unavailable("status") from exc
    return twiml()


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What a status callback changed: nothing (unknown or repeated), the status, a work item."""

    effect_id: int | None
    changed: bool
    work_item_id: int | None = None
    opted_out: bool = False


def next_delivery_status(current: str | None, reported: str) -> str | None:
    """The status to store after `reported`, or None to keep `current` (pure).

    Twilio's callbacks may arrive out of order ("sent" after "delivered"); a final status is
    never replaced by one that is not, and a repeat changes nothing.
    """
    if reported == current:
        return None
    if current in FINAL_STATUSES and reported not in FINAL_STATUSES:
        return None
    return reported


def record_delivery(
    session: Session, cipher: PhiCipher, update: StatusUpdate, *, now: datetime
) -> DeliveryOutcome:
    """Store a message's delivery status; a final failure opens one front-desk work item."""
    effect = session.scalars(
        select(Effect).where(Effect.provider_ref == update.message_sid).with_for_update()
    ).first()
    if effect is None:
        # Twilio can report before the sender has committed the message's SID; not an error.
        logger.info("status callback for an unknown message", extra=_log(update))
        return DeliveryOutcome(None, changed=False)
    if update.key_tag is not None and update.key_tag != callback_key_tag(effect.key):
        logger.warning("status callback names another effect; ignored", extra=_log(update))
        return DeliveryOutcome(effect.id, changed=False)
    status = next_delivery_status(effect.delivery_status, update.status)
    if status is None:
        return DeliveryOutcome(effect.id, changed=False)
    effect.delivery_status = status
    logger.info("delivery status", extra={**_log(update), "effect_id": effect.id})
    if status not in UNDELIVERED or not effect.reaches_patient:
        return DeliveryOutcome(effect.id, changed=True)
    return _undelivered(session, cipher, effect, update, now=now)


def _log(update: StatusUpdate) -> dict[str, object]:
    return {
        "message_sid": update.message_sid,
        "status": update.status,
        "error_code": update.error_code,
    }


def _undelivered(
    session: Session, cipher: PhiCipher, effect: Effect, update: StatusUpdate, *, now: datetime
) -> DeliveryOutcome:
    payload = decrypt_payload(cipher, effect)
    focus = _text(payload, "focus") or effect.focus
    for_ref = _text(payload, "for_ref")
    code = update.error_code
    why = _ERROR_WORDS.get(code or 0, "Twilio gave no reason we know")
    opened = open_work_item(
        session,
        cipher,
        key=work_item_key("engine", "sms-undelivered", f"Effect/{effect.id}"),
        pool=UNDELIVERED_POOL,
        description=(
            f"{effect.summary}: the text could not be delivered: {why} "
            f"(Twilio error {code if code is not None else 'none given'}). Please call the patient."
        ),
        actor=STATUS_ACTOR,
        now=now,
        focus=focus,
        for_ref=for_ref,
        source_run_id=effect.run_id,
        source_effect_key=effect.key,
    )
    to = _text(payload, "to")
    opted_out = False
    if code == OPTED_OUT_CODE and to is not None:
        opted_out = _record_provider_opt_out(session, cipher, effect, to, now=now)
    # Reading the payload (the patient's number) is a PHI read by clinicflow itself.
    record_access(
        session,
        Actor.from_label(STATUS_ACTOR),
        "read",
        auditable([f"Effect/{effect.id}", focus, for_ref]),
        at=now,
        detail={"status": update.status, "error_code": code},
    )
    return DeliveryOutcome(effect.id, changed=True, work_item_id=opened.id, opted_out=opted_out)


def _record_provider_opt_out(
    session: Session, cipher: PhiCipher, effect: Effect, to: str, *, now: datetime
) -> bool:
    """Twilio says the number opted out: record it, unless the patient opted back in since the
    text was sent (then Twilio's refusal is older news than the START)."""
    digest = cipher.blind_index("phone", to)
    sent_at = effect.finished_at or effect.updated_at
    opted_in_since = session.scalar(
        select(ConsentChange.id)
        .where(ConsentChange.channel == MessageChannel.SMS.value)
        .where(ConsentChange.contact_digest == digest)
        .where(ConsentChange.opted_out.is_(False))
        .where(ConsentChange.changed_at > sent_at)
        .limit(1)
    )
    if opted_in_since is not None:
        return False
    record_consent(
        session,
        channel=MessageChannel.SMS,
        contact_digest=digest,
        opted_out=True,
        keyword=f"twilio {OPTED_OUT_CODE}",
        source=ConsentSource.PROVIDER,
        now=now,
    )
    return True


def _text(payload: Mapping[str, object], name: str) -> str | None:
    value = payload.get(name)
    return value if isinstance(value, str) and value else None
