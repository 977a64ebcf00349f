"""The second factor: TOTP codes from an authenticator app (RFC 6238) and recovery codes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from datetime import datetime

import pyotp
import segno

__all__ = [
    "RECOVERY_ALPHABET",
    "STEP_S",
    "hash_recovery_code",
    "match_recovery_code",
    "new_recovery_codes",
    "new_salt",
    "new_totp_secret",
    "normalise_recovery_code",
    "provisioning_uri",
    "qr_svg",
    "verify_totp",
]

# RFC 6238 section 5.2 recommends a 30-second step, and authenticator apps assume it.
STEP_S = 30
# One step either side absorbs a phone clock that is a little off and the time spent typing
# (RFC 6238 section 5.2 allows "at most one time step" of network delay); more widens the
# window an observed code stays usable.
_DRIFT_STEPS = 1
_DIGITS = 6

# Crockford's base32: digits and lower-case letters without i, l, o, u, so nothing on paper is
# ambiguous; 5 bits per character.
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
# 16 characters x 5 bits = 80 bits per code, in four groups of four for reading aloud.
_RECOVERY_LENGTH = 16
_RECOVERY_GROUP = 4
# What people write down or type for the letters we left out (Crockford's decoding rule).
_LOOKALIKES = str.maketrans({"i": "1", "l": "1", "o": "0"})
_SALT_BYTES = 16


def new_totp_secret() -> str:
    """A fresh TOTP secret: 160 random bits as 32 base32 characters (RFC 4226 section 4)."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, *, username: str, issuer: str) -> str:
    """The `otpauth://totp/...` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, digits=_DIGITS, interval=STEP_S).provisioning_uri(
        name=username, issuer_name=issuer
    )


def qr_svg(uri: str, *, title: str = "QR code to scan with your authenticator app") -> str:
    """An inline `<svg>` element showing `uri` as a QR code, safe to render with Jinja's `|safe`.

    No XML declaration, no namespace and no data: URI, so it passes a `default-src 'self'` CSP.
    The URI itself is only encoded as modules (path data), never copied into the markup, and
    segno escapes the title.
    """
    # Error correction "M" (15%) survives a glare on the screen while keeping the symbol small.
    code = segno.make(uri, error="m", micro=False)
    return str(code.svg_inline(scale=4, title=title))


def verify_totp(secret: str, code: str, *, now: datetime, last_step: int | None) -> int | None:
    """The time step `code` belongs to (store it as the new `last_step`), or None to refuse it.

    Refused: anything that is not 6 digits once spaces are removed, a code outside the current
    step +/- 1, and a code whose step is not after `last_step`, because RFC 6238 section 5.2
    says a verifier must not accept the same code twice (ASVS 4.0 2.8.4).
    """
    if now.tzinfo is None:
        raise ValueError("verify_totp needs an aware datetime")
    digits = "".join(code.split())
    if len(digits) != _DIGITS or not (digits.isascii() and digits.isdigit()):
        return None
    totp = pyotp.TOTP(secret, digits=_DIGITS, interval=STEP_S)
    current = int(now.timestamp()) // STEP_S
    matched = None
    # Try every candidate step, not stopping at the first match, so timing says nothing about
    # which one matched; pyotp compares in constant time.
    for step in range(current - _DRIFT_STEPS, current + _DRIFT_STEPS + 1):
        if totp.verify(digits, for_time=step * STEP_S) and (last_step is None or step > last_step):
            matched = step
    return matched


def new_recovery_codes(count: int = 10) -> list[str]:
    """`count` fresh recovery codes such as `7k2q-9m4x-ht3b-0pzr`, 80 random bits each."""
    return [_new_recovery_code() for _ in range(count)]


def _new_recovery_code() -> str:
    chars = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
    groups = [chars[i : i + _RECOVERY_GROUP] for i in range(0, _RECOVERY_LENGTH, _RECOVERY_GROUP)]
    return "-".join(groups)


def normalise_recovery_code(code: str) -> str:
    """`code` as it is hashed: lower case, without hyphens or spaces, lookalike letters mapped."""
    compact = "".join(code.replace("-", " ").split()).lower()
    return compact.translate(_LOOKALIKES)


def new_salt() -> bytes:
    """A fresh per-user salt for that user's recovery codes (128 bits)."""
    return secrets.token_bytes(_SALT_BYTES)


def hash_recovery_code(code: str, *, salt: bytes) -> str:
    """The hex SHA-256 of `salt` and the normalised `code`, which is what we store.

    A fast hash is enough here, unlike for passwords: ASVS 4.0 2.6.2 accepts a salted approved
    hash for lookup secrets, and guessing an 80-bit random code takes ~2^79 hashes, which no
    amount of speed makes feasible. It also keeps checking ten stored codes cheap.
    """
    return hashlib.sha256(salt + normalise_recovery_code(code).encode()).hexdigest()


def match_recovery_code(code: str, *, salt: bytes, unused_hashes: Sequence[str]) -> str | None:
    """The stored hash that `code` matches (mark it used), or None when it matches none."""
    normalised = normalise_recovery_code(code)
    if len(normalised) != _RECOVERY_LENGTH or any(c not in RECOVERY_ALPHABET for c in normalised):
        return None
    candidate = hash_recovery_code(normalised, salt=salt)
    matched = None
    # Compare with every stored hash, in constant time, so timing doesn't say which one or
    # how many characters matched.
    for stored in unused_hashes:
        if hmac.compare_digest(candidate.encode(), stored.encode()):
            matched = stored
    return matched
