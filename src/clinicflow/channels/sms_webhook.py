"""What Twilio posts to us: signature checks and parsing of inbound texts and status callbacks.

Pure functions over the request's URL and form fields, so any web framework can use them. Twilio
signs each webhook with the account's auth token (HMAC-SHA1 over the full URL and the sorted form
fields, sent as `X-Twilio-Signature`); `RequestValidator` is Twilio's own offline check.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from twilio.request_validator import RequestValidator

from clinicflow.errors import InputError

STATUS_PATH = "/webhooks/twilio/status"
INBOUND_PATH = "/webhooks/twilio/sms"
KEY_TAG_PARAM = "k"

# Twilio's message statuses after which nothing more will happen to an outgoing message.
FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed", "canceled", "read"})


@dataclass(frozen=True, slots=True)
class InboundSms:
    """A text a patient sent to the practice's number."""

    message_sid: str
    from_: str
    to: str
    body: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    """Twilio's news about a message we sent: `key_tag` ties it to the effect that sent it."""

    message_sid: str
    status: str
    error_code: int | None
    key_tag: str | None = None

    @property
    def is_final(self) -> bool:
        """True when the message will not change status again."""
        return self.status in FINAL_STATUSES


def callback_key_tag(key: str) -> str:
    """The opaque tag for an effect key that rides in the status callback URL.

    A hash rather than the key itself: keys name appointments, and the URL is stored at Twilio.
    Not keyed with the auth token, so rotating the token does not orphan messages in flight.
    """
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def verify_signature(
    url: str, params: Mapping[str, str], signature: str | None, auth_token: str
) -> bool:
    """True when `signature` is Twilio's signature of this URL and these form fields."""
    if not signature:
        return False
    return bool(RequestValidator(auth_token).validate(url, dict(params), signature))


def _field(params: Mapping[str, str], name: str, what: str, *, allow_empty: bool = False) -> str:
    value = params.get(name)
    if value is None or (not value and not allow_empty):
        raise InputError(f"`{name}` is missing", where=f"Twilio {what} webhook")
    return value


def parse_inbound(params: Mapping[str, str], *, received_at: datetime) -> InboundSms:
    """The inbound text in a Twilio messaging webhook; InputError names a missing field."""
    return InboundSms(
        message_sid=_field(params, "MessageSid", "inbound SMS"),
        from_=_field(params, "From", "inbound SMS"),
        to=_field(params, "To", "inbound SMS"),
        # A picture-only MMS arrives with an empty Body, which is still a message.
        body=_field(params, "Body", "inbound SMS", allow_empty=True),
        received_at=received_at,
    )


def parse_status(params: Mapping[str, str], *, key_tag: str | None = None) -> StatusUpdate:
    """The status change in a Twilio status callback; InputError names a missing field."""
    sid = _field(params, "MessageSid", "status callback")
    status = _field(params, "MessageStatus", "status callback")
    raw_code = params.get("ErrorCode") or ""
    try:
        error_code = int(raw_code) if raw_code else None
    except ValueError:
        raise InputError(
            f"`ErrorCode` is not a number ({raw_code!r})", where="Twilio status callback webhook"
        ) from None
    return StatusUpdate(sid, status, error_code, key_tag or None)
