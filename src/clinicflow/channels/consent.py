"""Who may be messaged: opt-outs and opt-ins per contact and channel, kept as evidence.

`consent_changes` is append-only and the latest row (highest id) of a contact is its state; no
row means not opted out. Every STOP is appended, even when the contact had already opted out:
the question a regulator or the patient asks is "did they tell you, and when", and each time
they did is an answer. `record_consent` returns whether the state changed, for callers that
confirm or count changes. Contacts are blind indexes, never phone numbers or addresses.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from clinicflow.engine.payloads import MessageChannel
from clinicflow.store.messaging import ConsentChange

# Keeps each IN list well below SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 500
_KEYWORD_LENGTH = 32  # consent_changes.keyword


class ConsentSource(StrEnum):
    """How we learnt of a consent change."""

    SMS = "sms"  # the patient texted a keyword
    EMAIL_LINK = "email-link"  # the patient followed an e-mail's unsubscribe link
    STAFF = "staff"  # a person recorded what the patient said (on the phone, at the desk)
    PROVIDER = "provider"  # Twilio (or the mail server) told us the contact refuses messages


def record_consent(
    session: Session,
    *,
    channel: MessageChannel,
    contact_digest: str,
    opted_out: bool,
    keyword: str,
    source: ConsentSource,
    now: datetime,
    inbound_message_id: int | None = None,
) -> bool:
    """Append an opt-out or opt-in as evidence; True when it changed the contact's state."""
    before = is_opted_out(session, channel, contact_digest)
    session.add(
        ConsentChange(
            channel=channel.value,
            contact_digest=contact_digest,
            opted_out=opted_out,
            keyword=keyword[:_KEYWORD_LENGTH],
            inbound_message_id=inbound_message_id,
            source=source.value,
            changed_at=now,
        )
    )
    # Flushed now, so a later check in this transaction sees the new state.
    session.flush()
    return before != opted_out


def is_opted_out(session: Session, channel: MessageChannel, contact_digest: str) -> bool:
    """True when the contact's latest consent change on `channel` is an opt-out."""
    latest = session.scalar(
        select(ConsentChange.opted_out)
        .where(ConsentChange.channel == channel.value)
        .where(ConsentChange.contact_digest == contact_digest)
        .order_by(ConsentChange.id.desc())
        .limit(1)
    )
    return bool(latest)


_LATEST = (
    select(func.max(ConsentChange.id).label("id"))
    .where(ConsentChange.channel == bindparam("channel"))
    .where(ConsentChange.contact_digest.in_(bindparam("digests", expanding=True)))
    .group_by(ConsentChange.contact_digest)
    .subquery()
)
# Built once (building it cost more than running it, a few times a run and a batch).
_OPTED_OUT_AMONG = (
    select(ConsentChange.contact_digest)
    .join(_LATEST, ConsentChange.id == _LATEST.c.id)
    .where(ConsentChange.opted_out.is_(True))
)


def opted_out_among(
    session: Session, channel: MessageChannel, digests: Collection[str]
) -> set[str]:
    """The contacts among `digests` that are opted out of `channel` (one query per 500)."""
    wanted = sorted(set(digests))
    opted_out: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        params = {"channel": channel.value, "digests": chunk}
        opted_out.update(session.scalars(_OPTED_OUT_AMONG, params))
    return opted_out
