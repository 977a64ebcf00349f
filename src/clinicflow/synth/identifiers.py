"""Seeded random streams and the identifiers drawn from them: FHIR ids, NPIs, MRNs, member ids."""

from __future__ import annotations

import random
import string
import uuid


def stream(seed: int, purpose: str) -> random.Random:
    """A random stream for one part of the practice, so changing one part leaves the others alone.

    A str seed is hashed with SHA-512 by `random.seed`, so the stream is the same on every run and
    every platform (no PYTHONHASHSEED involved).
    """
    return random.Random(f"clinicflow-synth:{seed}:{purpose}")


def new_id(rng: random.Random) -> str:
    """A random (version 4) UUID drawn from `rng`, as a FHIR id."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def luhn_check_digit(payload: str) -> int:
    """The Luhn check digit that makes `payload` + digit pass the Luhn test."""
    total = 0
    for position, char in enumerate(reversed(payload)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10


def npi(rng: random.Random, *, organization: bool = False) -> str:
    """A National Provider Identifier with a valid check digit.

    CMS NPI standard: the check digit is Luhn over the prefix 80840 and the first nine digits;
    individuals start with 1, organizations with 2.
    """
    body = ("2" if organization else "1") + f"{rng.randrange(10**8):08d}"
    return body + str(luhn_check_digit("80840" + body))


# CMS Medicare Beneficiary Identifier: 11 characters; letters exclude S, L, O, I, B and Z.
_MBI_LETTERS = "".join(c for c in string.ascii_uppercase if c not in "SLOIBZ")
_MBI_ALNUM = _MBI_LETTERS + string.digits


def mbi(rng: random.Random) -> str:
    """A Medicare Beneficiary Identifier in the CMS format (e.g. 1EG4TE5MK73)."""
    pattern = ("C", "A", "N", "D", "A", "N", "D", "A", "A", "D", "D")
    pools = {"C": "123456789", "A": _MBI_LETTERS, "N": _MBI_ALNUM, "D": string.digits}
    return "".join(rng.choice(pools[kind]) for kind in pattern)


def member_id(rng: random.Random, prefix: str) -> str:
    """A payer member id: the payer's prefix and nine digits."""
    return f"{prefix}{rng.randrange(10**9):09d}"
