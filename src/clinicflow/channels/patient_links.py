"""Signed, expiring links in patient messages: confirm or cancel a visit, unsubscribe from e-mail.

A link carries ids only (an appointment id, a contact digest), never a name or an address, because
links end up in mail logs, browser histories and forwarded messages. Each purpose signs with its
own salt, so a token made for one purpose is refused for another. Time is passed in (`now`), not
read, so expiry can be tested and the web app answers from the same clock as everything else.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from clinicflow.errors import InputError

MIN_SECRET_BYTES = 32


class LinkPurpose(StrEnum):
    """What a link lets its holder do; the value is also the link's path on the public site."""

    VISIT = "visit"  # the reminder's confirm / cancel page
    UNSUBSCRIBE = "unsubscribe"  # RFC 8058 one-click: a POST to the same URL must work
    CLAIM = "claim"  # a waitlist offer: take the freed slot


def make_link(
    secret: bytes | Sequence[bytes],
    public_url: str,
    purpose: LinkPurpose,
    payload: Mapping[str, str | int | bool],
    *,
    now: datetime,
) -> str:
    """A URL under `public_url` that proves we issued `payload` for `purpose` at `now`."""
    for name, value in payload.items():
        if isinstance(value, str) and "@" in value:
            raise ValueError(
                f"link payload {name!r} looks like an e-mail address; put contact_digest() "
                "in links, never the address itself"
            )
    token = _serializer(secret, purpose, now).dumps(dict(payload))
    return f"{public_url.rstrip('/')}/{purpose.value}/{token}"


def read_link(
    secret: bytes | Sequence[bytes],
    token: str,
    purpose: LinkPurpose,
    max_age_s: int,
    *,
    now: datetime,
) -> dict[str, Any]:
    """The payload of a token we signed for `purpose` at most `max_age_s` before `now`."""
    try:
        payload = _serializer(secret, purpose, now).loads(token, max_age=max_age_s)
    except SignatureExpired:
        raise InputError(
            "This link has expired; please call the practice.",
            where="link",
            code="link.expired",
        ) from None
    except BadSignature:  # tampered, truncated, another purpose, or another practice's key
        raise InputError(
            "This link is not valid; please call the practice.",
            where="link",
            code="link.invalid",
        ) from None
    if not isinstance(payload, dict):
        raise InputError(
            "This link is not valid; please call the practice.", where="link", code="link.invalid"
        )
    return payload


def contact_digest(secret: bytes, address: str) -> str:
    """A stable keyed digest of an e-mail address or phone number, for links and opt-out lists."""
    normalised = address.strip().lower().encode()
    return hmac.new(secret, b"contact:" + normalised, hashlib.sha256).hexdigest()[:32]


def _serializer(
    secret: bytes | Sequence[bytes], purpose: LinkPurpose, now: datetime
) -> URLSafeTimedSerializer:
    keys = (secret,) if isinstance(secret, bytes) else tuple(secret)
    if not keys or any(len(key) < MIN_SECRET_BYTES for key in keys):
        raise ValueError(f"a patient-link secret must be at least {MIN_SECRET_BYTES} bytes")
    if now.tzinfo is None:
        raise ValueError("patient links need an aware `now`")
    return _serializer_at(keys, purpose, int(now.timestamp()))


@functools.lru_cache(maxsize=32)
def _serializer_at(
    keys: tuple[bytes, ...], purpose: LinkPurpose, timestamp: int
) -> URLSafeTimedSerializer:
    # Kept per instant: a reminder run signs thousands of links at one `now`.
    # itsdangerous uses the last key to sign and tries all of them to verify: oldest first.
    return URLSafeTimedSerializer(
        list(keys),
        salt=f"clinicflow.patient-link.{purpose.value}",
        signer=_fixed_time_signer(timestamp),
    )


def _fixed_time_signer(timestamp: int) -> type[TimestampSigner]:
    """A signer whose clock reads `timestamp`, both when signing and when checking the age."""

    class _Signer(TimestampSigner):
        def get_timestamp(self) -> int:
            return timestamp

    return _Signer
