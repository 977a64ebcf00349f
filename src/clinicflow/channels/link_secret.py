"""The secrets that sign patient links, and the links our messages carry.

Reminders carry a visit link (confirm / cancel) and an unsubscribe link; waitlist offers carry a
claim link (take the freed slot).

Link secrets are derived from the PHI keys (HKDF-SHA256, RFC 5869) instead of being one more
secret to configure, back up and rotate: one secret per PHI key, the active key's signing new
links. During a PHI key rotation the old key stays in the keyring until every ciphertext is
re-encrypted, and so its link secret keeps verifying the links mailed before the rotation. The
HKDF `info` label separates this use of the key from encryption, so a link secret reveals
nothing about the key that encrypts PHI.

A link names ids only: the visits it answers and the contact's blind index
(`cipher.blind_index("email", address)`), never a name or an address.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from clinicflow.channels.patient_links import LinkPurpose, make_link, read_link
from clinicflow.errors import InputError
from clinicflow.security.phi import Keyring
from clinicflow.settings import Settings

LINK_SECRET_BYTES = 32
_HKDF_INFO = b"clinicflow patient-link signing key v1"

# A reminder mailed 7 days ahead must still open on the day of the visit, and a patient may
# keep the mail of a visit that is moved; 30 days covers both without links living forever.
VISIT_LINK_MAX_AGE = timedelta(days=30)
# An unsubscribe link must keep working for as long as someone may read the mail (CAN-SPAM asks
# for at least 30 days; people unsubscribe from old mail much later).
UNSUBSCRIBE_LINK_MAX_AGE = timedelta(days=365)

# A waitlist offer's link is refused by the offer's own expiry (the slot's start less the lead
# time) long before this; the signature's age is only the outer bound.
CLAIM_LINK_MAX_AGE = timedelta(days=14)

_APPOINTMENTS = "a"  # appointment ids, comma-joined (FHIR ids never hold a comma)
_CONTACT = "c"  # the contact's blind index
_OFFER = "o"  # a waitlist offer's id


@dataclass(frozen=True, slots=True)
class VisitLink:
    """What a visit link lets its holder answer: these visits, for this contact."""

    appointment_ids: tuple[str, ...]
    contact_digest: str


def link_secrets(keyring: Keyring) -> list[bytes]:
    """One 32-byte link secret per PHI key, the active key's first."""
    return [_derive(key) for key in [keyring.active, *keyring.previous]]


def visit_link(
    settings: Settings,
    keyring: Keyring,
    *,
    appointment_ids: Sequence[str],
    contact_digest: str,
    now: datetime,
) -> str:
    """The confirm / cancel page's URL for these visits, as the reminder prints it."""
    if isinstance(appointment_ids, str) or not appointment_ids:
        raise ValueError("a visit link needs a list of one or more appointment ids")
    if any(not fhir_id or "," in fhir_id for fhir_id in appointment_ids):
        raise ValueError("appointment ids in a visit link must be non-empty and hold no comma")
    payload = {_APPOINTMENTS: ",".join(appointment_ids), _CONTACT: _checked(contact_digest)}
    return make_link(
        _signing_order(keyring), settings.public_url, LinkPurpose.VISIT, payload, now=now
    )


def unsubscribe_link(
    settings: Settings, keyring: Keyring, *, contact_digest: str, now: datetime
) -> str:
    """The one-click unsubscribe URL for this contact (List-Unsubscribe and the mail's footer)."""
    payload = {_CONTACT: _checked(contact_digest)}
    return make_link(
        _signing_order(keyring), settings.public_url, LinkPurpose.UNSUBSCRIBE, payload, now=now
    )


def claim_link(
    settings: Settings, keyring: Keyring, *, offer_id: int, contact_digest: str, now: datetime
) -> str:
    """The page where a waitlist patient takes the slot offered to them."""
    payload: dict[str, str | int | bool] = {
        _OFFER: int(offer_id),
        _CONTACT: _checked(contact_digest),
    }
    return make_link(
        _signing_order(keyring), settings.public_url, LinkPurpose.CLAIM, payload, now=now
    )


def read_claim_link(keyring: Keyring, token: str, *, now: datetime) -> int:
    """The offer id a claim link's token names; InputError when expired or forged."""
    payload = read_link(
        _signing_order(keyring),
        token,
        LinkPurpose.CLAIM,
        int(CLAIM_LINK_MAX_AGE.total_seconds()),
        now=now,
    )
    offer = payload.get(_OFFER)
    if not isinstance(offer, int) or isinstance(offer, bool) or offer <= 0:
        raise _malformed()
    return offer


def read_visit_link(keyring: Keyring, token: str, *, now: datetime) -> VisitLink:
    """The visits and contact a visit link's token names; InputError when expired or forged."""
    payload = read_link(
        _signing_order(keyring),
        token,
        LinkPurpose.VISIT,
        int(VISIT_LINK_MAX_AGE.total_seconds()),
        now=now,
    )
    ids, digest = payload.get(_APPOINTMENTS), payload.get(_CONTACT)
    if not isinstance(ids, str) or not ids or not isinstance(digest, str) or not digest:
        raise _malformed()
    return VisitLink(appointment_ids=tuple(ids.split(",")), contact_digest=digest)


def read_unsubscribe_link(keyring: Keyring, token: str, *, now: datetime) -> str:
    """The contact digest an unsubscribe link's token names; InputError when expired or forged."""
    payload = read_link(
        _signing_order(keyring),
        token,
        LinkPurpose.UNSUBSCRIBE,
        int(UNSUBSCRIBE_LINK_MAX_AGE.total_seconds()),
        now=now,
    )
    digest = payload.get(_CONTACT)
    if not isinstance(digest, str) or not digest:
        raise _malformed()
    return digest


@functools.lru_cache(maxsize=16)  # HKDF per link would cost more than signing it
def _derive(key: bytes) -> bytes:
    # No salt: the input is already a uniformly random 256-bit key (RFC 5869 section 3.1).
    return HKDF(algorithm=SHA256(), length=LINK_SECRET_BYTES, salt=None, info=_HKDF_INFO).derive(
        key
    )


def _signing_order(keyring: Keyring) -> list[bytes]:
    # itsdangerous signs with the last secret of the list and verifies with any of them.
    return list(reversed(link_secrets(keyring)))


def _checked(contact_digest: str) -> str:
    if not contact_digest or "@" in contact_digest:
        raise ValueError("pass the contact's blind index, never the address itself")
    return contact_digest


def _malformed() -> InputError:
    """A token we signed but whose payload is not a link of this kind (an older format)."""
    return InputError(
        "This link is not valid; please call the practice.", where="link", code="link.invalid"
    )
