"""Patients in households: names, ages, addresses, phones, emails, languages (pure).

About 10% of patients live with a family member who is also a patient; a household shares one
address, family name, language and mobile number (children use a parent's), which is what makes
"two reminders to the same phone" happen in the demo.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta

from clinicflow.synth import names
from clinicflow.synth.identifiers import new_id
from clinicflow.synth.practice import NATIONAL_AREA_CODES, Practice, Region
from clinicflow.synth.timeline import DAY_S

# Household sizes 2-4 with this probability gives ~10% of patients in a shared household.
FAMILY_HOUSEHOLD_SHARE = 0.036
SPANISH_NAME_SHARE = 0.26
SPANISH_PREFERRED_IF_SPANISH_NAME = 0.78
SNOWBIRD_SHARE = 0.05
SNOWBIRD_ZONES = (
    "America/Phoenix", "America/Chicago", "America/Denver", "America/Los_Angeles",
    "America/New_York", "America/Puerto_Rico", "Pacific/Honolulu",
)  # fmt: skip
# (youngest, oldest, share) of single-person households: a practice's age pyramid.
AGE_BANDS = (
    (0, 2, 0.035), (3, 12, 0.09), (13, 17, 0.06), (18, 29, 0.14), (30, 44, 0.17),
    (45, 64, 0.27), (65, 79, 0.18), (80, 96, 0.055),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Patient:
    """One patient; `relationship` is to the household's first member (self, spouse, child)."""

    index: int
    id: str
    mrn: str
    given: tuple[str, ...]
    family: str
    gender: str
    birth_on: date
    language: str | None
    address: tuple[str, ...]
    city: str
    state: str
    postal_code: str
    mobile: str | None
    home_phone: str | None
    email: str | None
    prefers_email: bool
    time_zone: str | None
    household: int
    relationship: str
    gp_index: int
    updated_s: int


@dataclass(frozen=True, slots=True)
class _Home:
    """What the members of a household share."""

    number: int
    family: str
    spanish: bool
    language: str | None
    address: tuple[str, ...]
    city: str
    postal_code: str
    time_zone: str | None


def age_on(birth_on: date, on: date) -> int:
    """Age in whole years on `on`."""
    return on.year - birth_on.year - ((on.month, on.day) < (birth_on.month, birth_on.day))


def mobile_numbers(rng: random.Random, region: Region, needed: int) -> list[str]:
    """`needed` distinct numbers in the 555 exchange, using as many area codes as that takes."""
    extra = tuple(code for code in NATIONAL_AREA_CODES if code not in region.area_codes)
    codes = (region.area_codes + extra)[: max(len(region.area_codes), math.ceil(needed / 4000))]
    picks = rng.sample(
        range(len(codes) * 10_000), min(len(codes) * 10_000, needed * 41 // 40 + 400)
    )
    # 555-0100..0199 are the practice's own lines; 555-1212 is directory assistance.
    kept = (p for p in picks if not (100 <= p % 10_000 <= 199 or p % 10_000 == 1212))
    numbers = [f"+1{codes[p // 10_000]}555{p % 10_000:04d}" for p in kept][:needed]
    if len(numbers) < needed:
        raise ValueError(f"cannot draw {needed} distinct phone numbers")
    return numbers


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in folded.lower() if c.isalnum())


def _email(rng: random.Random, given: str, family: str) -> str:
    first, last = _ascii(given), _ascii(family)
    local = rng.choice(
        (f"{first}.{last}", f"{first[0]}{last}", f"{first}{last}{rng.randrange(10, 99)}")
    )
    return f"{local}@{rng.choice(names.EMAIL_DOMAINS)}"


def _age(rng: random.Random) -> int:
    pick = rng.random()
    for youngest, oldest, share in AGE_BANDS:
        if pick < share:
            return rng.randint(youngest, oldest)
        pick -= share
    return rng.randint(30, 60)


def _given(rng: random.Random, gender: str, spanish: bool) -> tuple[str, ...]:
    if gender == "other":
        gender = rng.choice(("female", "male"))
    if spanish:
        pool = names.SPANISH_GIVEN_FEMALE if gender == "female" else names.SPANISH_GIVEN_MALE
    else:
        pool = names.ENGLISH_GIVEN_FEMALE if gender == "female" else names.ENGLISH_GIVEN_MALE
    first = rng.choice(pool)
    if rng.random() < 0.3:
        middle = rng.choice(pool)
        return (first, middle) if middle != first else (first,)
    return (first,)


def _home(rng: random.Random, number: int, practice: Practice) -> _Home:
    spanish = rng.random() < SPANISH_NAME_SHARE
    language: str | None
    if spanish:
        language = "es" if rng.random() < SPANISH_PREFERRED_IF_SPANISH_NAME else "en"
        family = rng.choice(names.SPANISH_FAMILY)
    else:
        language = "en" if rng.random() < 0.7 else None
        family = rng.choice(names.ENGLISH_FAMILY)
    town = rng.choices(range(3), weights=(45, 30, 25))[0]
    street = f"{rng.choice(names.STREET_NAMES)} {rng.choice(names.STREET_SUFFIXES)}"
    line = f"{rng.randrange(1, 9999)} {street}"
    address: tuple[str, ...] = (line,)
    if rng.random() < 0.15:
        address = (
            line,
            f"{rng.choice(names.UNIT_PREFIXES)} {rng.randrange(1, 40)}{rng.choice('ABCD')}",
        )
    zones = [z for z in SNOWBIRD_ZONES if z != practice.zone]
    return _Home(
        number=number,
        family=family,
        spanish=spanish,
        language=language,
        address=address,
        city=practice.region.towns[town],
        postal_code=f"{practice.region.zip_prefix}{10 + 20 * town + rng.randrange(8):02d}",
        time_zone=rng.choice(zones) if rng.random() < SNOWBIRD_SHARE else None,
    )


def _members(rng: random.Random, size: int) -> list[tuple[str, int]]:
    """(relationship, age) of each household member, the first one an adult."""
    if size == 1:
        return [("self", _age(rng))]
    head = rng.randint(26, 55)
    members = [("self", head)]
    if rng.random() < 0.55:
        members.append(("spouse", max(18, head + rng.randint(-6, 6))))
    while len(members) < size:
        members.append(("child", rng.randint(0, min(17, head - 18))))
    return members


def _household_size(rng: random.Random, room: int) -> int:
    if room >= 2 and rng.random() < FAMILY_HOUSEHOLD_SHARE:
        return min(room, rng.choice((2, 3, 3, 4)))
    return 1


def _gp_choices(practice: Practice) -> tuple[list[int], list[int]]:
    """Primary-care clinicians a child or an adult may have as general practitioner (weighted)."""
    children: list[int] = []
    adults: list[int] = []
    for clinician in practice.clinicians:
        key = clinician.specialty.key
        if key == "pediatrics":
            children.extend([clinician.index] * 3)
        elif key in ("family", "np"):
            children.append(clinician.index)
            adults.append(clinician.index)
        elif key == "internal":
            adults.append(clinician.index)
    return children, adults


def _gender(rng: random.Random) -> str:
    pick = rng.random()
    return "female" if pick < 0.51 else "male" if pick < 0.995 else "other"


def _contact(rng: random.Random, given: str, family: str) -> tuple[str | None, bool]:
    """(email, prefers email): a quarter have no email; of the rest, about a fifth prefer it."""
    if rng.random() < 0.25:
        return None, False
    return _email(rng, given, family), rng.random() < 0.23


@dataclass(frozen=True, slots=True)
class _Setting:
    """What every household is generated against."""

    practice: Practice
    anchor_on: date
    as_of_s: int
    child_gps: list[int]
    adult_gps: list[int]


def _household(
    rng: random.Random, setting: _Setting, home: _Home, size: int, first_index: int, number: str
) -> list[Patient]:
    has_mobile = rng.random() >= 0.03
    members = _members(rng, size)
    household_email: str | None = None
    household_prefers_email = False
    patients = []
    for offset, (relationship, age) in enumerate(members):
        gender = _gender(rng)
        given = _given(rng, gender, home.spanish)
        if relationship == "child" or (size == 1 and age < 18):
            email, prefers_email = household_email, household_prefers_email
            if size == 1:  # a child whose parent is not a patient here: the parent's contacts
                parent = _given(rng, rng.choice(("female", "male")), home.spanish)[0]
                email, prefers_email = _contact(rng, parent, home.family)
        else:
            email, prefers_email = _contact(rng, given[0], home.family)
            if relationship == "self":
                household_email, household_prefers_email = email, prefers_email
        gps = setting.child_gps if age < 18 else setting.adult_gps
        birth_on = setting.anchor_on - timedelta(days=int(age * 365.25) + rng.randrange(365))
        patients.append(
            Patient(
                index=first_index + offset,
                id=new_id(rng),
                mrn=str(10_000_000 + (first_index + offset) * 7 + rng.randrange(7)),
                given=given,
                family=home.family,
                gender=gender,
                birth_on=birth_on,
                language=home.language,
                address=home.address,
                city=home.city,
                state=setting.practice.region.state,
                postal_code=home.postal_code,
                mobile=number if has_mobile else None,
                home_phone=None if has_mobile else number,
                email=email,
                prefers_email=prefers_email and email is not None,
                time_zone=home.time_zone,
                household=home.number,
                relationship=relationship,
                gp_index=rng.choice(gps or setting.adult_gps),
                updated_s=setting.as_of_s - rng.randrange(DAY_S, 400 * DAY_S),
            )
        )
    return patients


def build_patients(
    rng: random.Random, count: int, practice: Practice, anchor_on: date, as_of_s: int
) -> list[Patient]:
    """`count` patients in households, in household order."""
    numbers = iter(mobile_numbers(rng, practice.region, count))
    setting = _Setting(practice, anchor_on, as_of_s, *_gp_choices(practice))
    patients: list[Patient] = []
    household = 0
    while len(patients) < count:
        size = _household_size(rng, count - len(patients))
        home = _home(rng, household, practice)
        patients.extend(_household(rng, setting, home, size, len(patients), next(numbers)))
        household += 1
    return patients
