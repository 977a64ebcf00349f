"""The practice's specialties: taxonomy codes, visit lengths, who they see, and the roster."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

PATIENTS_PER_PRACTITIONER = 1500
MIN_PRACTITIONERS = 12


class Audience(StrEnum):
    """Which patients a specialty books."""

    EVERYONE = "everyone"
    CHILDREN = "children"
    ADULTS = "adults"
    WOMEN = "women"
    OVER_30 = "over-30"
    OVER_12 = "over-12"


@dataclass(frozen=True, slots=True)
class Specialty:
    """A specialty with its NUCC taxonomy code and HL7 service type."""

    key: str
    nucc_code: str
    display: str
    service_code: str
    service_display: str
    slot_minutes: int
    audience: Audience
    primary_care: bool
    credential: str


SPECIALTIES: dict[str, Specialty] = {
    s.key: s
    for s in (
        Specialty("family", "207Q00000X", "Family Medicine", "124", "General Practice",
                  20, Audience.EVERYONE, True, "MD"),
        Specialty("internal", "207R00000X", "Internal Medicine", "124", "General Practice",
                  20, Audience.ADULTS, True, "MD"),
        Specialty("pediatrics", "208000000X", "Pediatrics", "200", "Paediatric Medicine",
                  15, Audience.CHILDREN, True, "MD"),
        Specialty("np", "363LF0000X", "Nurse Practitioner, Family", "124", "General Practice",
                  15, Audience.EVERYONE, True, "NP"),
        Specialty("obgyn", "207V00000X", "Obstetrics & Gynecology", "186",
                  "Obstetrics & Gynaecology", 20, Audience.WOMEN, False, "MD"),
        Specialty("cardiology", "207RC0000X", "Cardiovascular Disease", "165", "Cardiology",
                  30, Audience.OVER_30, False, "MD"),
        Specialty("dermatology", "207N00000X", "Dermatology", "168", "Dermatology",
                  15, Audience.EVERYONE, False, "MD"),
        Specialty("endocrinology", "207RE0101X", "Endocrinology, Diabetes & Metabolism", "169",
                  "Endocrinology", 30, Audience.ADULTS, False, "MD"),
        Specialty("gastroenterology", "207RG0100X", "Gastroenterology", "170",
                  "Gastroenterology & Hepatology", 30, Audience.ADULTS, False, "MD"),
        Specialty("psychiatry", "2084P0800X", "Psychiatry", "141", "Psychiatry (Requires Referral)",
                  30, Audience.OVER_12, False, "MD"),
        Specialty("neurology", "2084N0400X", "Neurology", "177", "Neurology",
                  30, Audience.ADULTS, False, "MD"),
        Specialty("rheumatology", "207RR0500X", "Rheumatology", "182", "Rheumatology",
                  30, Audience.ADULTS, False, "DO"),
    )
}  # fmt: skip

# The twelve every practice has, then the order in which a bigger practice adds people.
BASE_ROSTER = (
    "family", "family", "family", "internal", "internal", "pediatrics", "pediatrics", "np",
    "obgyn", "cardiology", "dermatology", "endocrinology",
)  # fmt: skip
GROWTH_ROSTER = (
    "family", "internal", "pediatrics", "np", "gastroenterology", "family", "psychiatry",
    "internal", "neurology", "pediatrics", "rheumatology", "family", "obgyn", "cardiology",
    "np", "dermatology", "internal", "endocrinology",
)  # fmt: skip


def practitioner_count(patients: int) -> int:
    """How many practitioners a practice of `patients` has: one per 1,500 patients, at least 12."""
    return max(MIN_PRACTITIONERS, math.ceil(patients / PATIENTS_PER_PRACTITIONER))


def roster(count: int) -> list[Specialty]:
    """The specialty of each of `count` practitioners (the base twelve first, then growth)."""
    keys = list(BASE_ROSTER[:count])
    while len(keys) < count:
        keys.append(GROWTH_ROSTER[(len(keys) - len(BASE_ROSTER)) % len(GROWTH_ROSTER)])
    return [SPECIALTIES[key] for key in keys]


def accepts(audience: Audience, age: int, gender: str) -> bool:
    """True when a patient of this age and gender is booked with this audience."""
    match audience:
        case Audience.EVERYONE:
            return True
        case Audience.CHILDREN:
            return age < 18
        case Audience.ADULTS:
            return age >= 18
        case Audience.WOMEN:
            return gender == "female" and 15 <= age <= 70
        case Audience.OVER_30:
            return age >= 30
        case Audience.OVER_12:
            return age >= 12
