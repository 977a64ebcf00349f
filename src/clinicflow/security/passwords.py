"""Passwords: which new ones we accept (NIST SP 800-63B 5.1.1.2) and how we store them (argon2id).

Every password is NFKC-normalised before it is checked, counted, hashed or verified, as 800-63B
5.1.1.2 asks, so full-width letters from an East Asian keyboard and their ASCII look-alikes
are the same secret.
"""

from __future__ import annotations

import functools
import re
import secrets
import threading
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Literal

from argon2 import Parameters, PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from clinicflow.errors import InputError, SecurityError

__all__ = [
    "BUILTIN_CONTEXT",
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "PRODUCTION_PARAMETERS",
    "TEST_PARAMETERS",
    "HashingProfile",
    "PasswordHashing",
    "check_new_password",
    "hashing_for",
    "normalise_password",
]

# ASVS 4.0 2.1.1 asks for at least 12 characters (NIST's floor is 8); 2.1.2 allows at most 128.
MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
# Refuse absurd inputs before NFKC, which costs time per character; NFKC can expand a code
# point up to 18-fold, so no password that is <= 128 after it is longer than this before it.
_MAX_RAW_LENGTH = MAX_PASSWORD_LENGTH * 18
# The service's own name is a context word for every account (800-63B 5.1.1.2).
BUILTIN_CONTEXT = ("clinicflow",)
# A context entry shorter than this would reject too many unrelated passwords ("al" in "always").
_MIN_CONTEXT_LENGTH = 3
# Usernames are also split at separators ("jane.rivera" -> "jane", "rivera"); shorter parts
# ("j", "dr") are too common inside ordinary words to forbid.
_MIN_USERNAME_PART_LENGTH = 4
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz")
_LONGEST_REPEATED_UNIT = 4

_WHERE = "password"


def normalise_password(password: str) -> str:
    """The form of `password` that is counted, compared and hashed (NFKC, 800-63B 5.1.1.2)."""
    return unicodedata.normalize("NFKC", password)


def check_new_password(password: str, *, username: str, context: Sequence[str] = ()) -> None:
    """Raise `InputError` saying what to change unless `password` is fit to be a new password.

    `context` holds words someone who knows this account could guess, such as the practice's
    name; "clinicflow" is always included. There are deliberately no composition rules
    (800-63B 5.1.1.2: verifiers SHOULD NOT impose them).
    """
    if len(password) > _MAX_RAW_LENGTH:
        raise _too_long()
    normalised = normalise_password(password)
    length = len(normalised)  # a str's length counts code points, as 5.1.1.2 requires
    if length < MIN_PASSWORD_LENGTH:
        raise InputError(
            f"Please choose a password of at least {MIN_PASSWORD_LENGTH} characters (this one "
            f"has {length}). A short sentence of four or five words is easy to remember and "
            "hard to guess.",
            where=_WHERE,
            code="password.too_short",
        )
    if length > MAX_PASSWORD_LENGTH:
        raise _too_long()
    folded = normalised.casefold()
    if _is_repetitive(folded):
        raise InputError(
            'This password is one character repeated or a simple run such as "aaaa" or '
            '"1234", which is guessed quickly. Please choose something less predictable.',
            where=_WHERE,
            code="password.repetitive",
        )
    if _is_common(folded):
        raise InputError(
            "This password is on a list of common and leaked passwords that attackers try "
            "first. Please choose a different one, for example four or five unrelated words.",
            where=_WHERE,
            code="password.common",
        )
    word = _context_word_in(folded, username=username, context=context)
    if word is not None:
        raise InputError(
            f'This password contains "{word}", which anyone who knows this account could '
            "guess. Please choose a password without your username or the practice's name.",
            where=_WHERE,
            code="password.context",
        )


def _too_long() -> InputError:
    return InputError(
        f"Please choose a password of at most {MAX_PASSWORD_LENGTH} characters.",
        where=_WHERE,
        code="password.too_long",
    )


def _is_repetitive(folded: str) -> bool:
    """True for a short unit repeated ("aaaa…", "abcabc…") or a straight run ("2345…", "lkji…")."""
    for unit in range(1, _LONGEST_REPEATED_UNIT + 1):
        if len(folded) % unit == 0 and folded == folded[:unit] * (len(folded) // unit):
            return True
    return any(
        _is_run(folded, alphabet) or _is_run(folded[::-1], alphabet) for alphabet in _SEQUENCES
    )


def _is_run(text: str, alphabet: str) -> bool:
    """True when each character follows the previous one in `alphabet`, wrapping ("…7890123")."""
    if not text or any(c not in alphabet for c in text):
        return False
    start = alphabet.index(text[0])
    return all(c == alphabet[(start + i) % len(alphabet)] for i, c in enumerate(text))


@functools.cache
def _common_passwords() -> frozenset[str]:
    """The ~30,000 most common passwords from breach corpora, loaded on first use."""
    # Imported here so processes that never set a password (workers, CLI) don't load the list.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    listed: str | Iterable[str] = FREQUENCY_LISTS["passwords"]
    # Some zxcvbn releases ship one comma-separated string, the installed 4.5 a list.
    entries = listed.split(",") if isinstance(listed, str) else listed
    return frozenset(entry.strip().casefold() for entry in entries if entry.strip())


def _is_common(folded: str) -> bool:
    """True when the password is a listed one, alone or padded only with digits and symbols.

    Checked: the whole password; the password with symbols trimmed from both ends
    ("123456!!!!!!" -> "123456"); and with digits and symbols trimmed from both ends
    ("password123456!" -> "password", "!!2024monkey" -> "monkey"). Not checked: leetspeak
    ("p@ssw0rd"), two listed words joined, or padding in the middle; the length minimum
    and the throttle cover what this misses.
    """
    candidates = {
        folded,
        re.sub(r"^[\W_]+|[\W_]+$", "", folded),
        re.sub(r"^[\W\d_]+|[\W\d_]+$", "", folded),
    }
    common = _common_passwords()
    return any(candidate in common for candidate in candidates if candidate)


def _context_word_in(folded: str, *, username: str, context: Sequence[str]) -> str | None:
    """The first context word that appears in the password, ignoring case, spaces and punctuation.

    A context entry counts as a whole ("Riverside Family Clinic" forbids "riversidefamilyclinic"
    but not "family"), so ordinary words in a practice's name stay usable. The username counts
    whole and by its parts, because people reuse their first or last name.
    """
    compact_password = _compact(folded)
    username_folded = normalise_password(username).casefold()
    words = [username_folded, *(normalise_password(c).casefold() for c in context)]
    words += BUILTIN_CONTEXT
    words += [
        p for p in re.split(r"[\W_]+", username_folded) if len(p) >= _MIN_USERNAME_PART_LENGTH
    ]
    for word in words:
        compact_word = _compact(word)
        if len(compact_word) < _MIN_CONTEXT_LENGTH:
            continue
        if compact_word in compact_password:
            return word.strip()
    return None


def _compact(text: str) -> str:
    return re.sub(r"[\W_]+", "", text)


# RFC 9106 section 4's second recommended option, for servers that cannot spend 2 GiB per hash:
# argon2id, t=3, m=64 MiB, p=4, 16-byte salt, 32-byte tag. It is argon2-cffi's
# RFC_9106_LOW_MEMORY profile (a test keeps them equal) and well above OWASP's argon2id floor
# (m=19 MiB, t=2, p=1). About 0.1-0.3 s per hash on one server core.
PRODUCTION_PARAMETERS = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=3,
    memory_cost=64 * 1024,  # KiB
    parallelism=4,
)

# Tests: the same hash format with the smallest cost argon2 allows, so a hash takes microseconds.
TEST_PARAMETERS = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=1,
    memory_cost=8,  # KiB, argon2's minimum (8 x parallelism)
    parallelism=1,
)

HashingProfile = Literal["production", "test"]
_PROFILES: dict[HashingProfile, Parameters] = {
    "production": PRODUCTION_PARAMETERS,
    "test": TEST_PARAMETERS,
}

# Each production hash or verify holds 64 MiB for its duration. Four at once caps that at
# 256 MiB, so a burst of logins (or a password-spraying attacker) queues instead of driving the
# web process out of memory; the fifth caller waits for a slot.
_HASH_SLOTS = threading.BoundedSemaphore(4)


class PasswordHashing:
    """Hashes and verifies passwords with one set of argon2id parameters.

    The calls are CPU-bound and block for the hash's duration: from async code, run them in a
    worker thread.
    """

    def __init__(self, parameters: Parameters) -> None:
        self.parameters = parameters
        self._hasher = PasswordHasher.from_parameters(parameters)
        self._dummy_hash: str | None = None

    def hash(self, password: str) -> str:
        """The PHC string (`$argon2id$v=19$m=…`) to store for `password`, with a fresh salt."""
        with _HASH_SLOTS:
            return self._hasher.hash(normalise_password(password))

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches `stored_hash`; False for a wrong password or no user.

        With `stored_hash=None` (no such user) a dummy hash is still verified, so the response
        time does not reveal which usernames exist (ASVS 4.0 2.2.1 / 2.5.x enumeration).
        A stored hash that cannot be parsed raises `SecurityError`: that is corruption, not a
        wrong password.
        """
        if len(password) > _MAX_RAW_LENGTH:
            return False  # can never have been set; answering fast reveals nothing about users
        target = stored_hash if stored_hash is not None else self._dummy()
        try:
            with _HASH_SLOTS:
                self._hasher.verify(target, normalise_password(password))
        except VerificationError:  # includes VerifyMismatchError, the wrong-password case
            return False
        except InvalidHashError as exc:
            raise SecurityError(
                "A stored password hash is damaged, so this account cannot sign in. An "
                "administrator should reset the account's password.",
                code="password.stored_hash_invalid",
            ) from exc
        return stored_hash is not None

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when `stored_hash` was made with other parameters; rehash it after a good login."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _dummy(self) -> str:
        # Made with this instance's parameters, so it costs exactly what a real verify costs.
        # Two threads racing here each build one; either result is fine.
        if self._dummy_hash is None:
            self._dummy_hash = self.hash(secrets.token_urlsafe(16))
        return self._dummy_hash


@functools.cache
def hashing_for(profile: HashingProfile) -> PasswordHashing:
    """The process-wide `PasswordHashing` for `profile` ("production" or "test")."""
    return PasswordHashing(_PROFILES[profile])
