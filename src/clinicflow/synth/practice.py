"""The practice itself: organization, three sites, payers, and the practitioners (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from clinicflow.synth import names
from clinicflow.synth.identifiers import new_id, npi
from clinicflow.synth.specialties import Specialty, practitioner_count, roster


@dataclass(frozen=True, slots=True)
class Region:
    """Where the practice is: a state, its towns, ZIP prefix and telephone area codes."""

    state: str
    towns: tuple[str, str, str]
    zip_prefix: str
    area_codes: tuple[str, ...]


_TOWNS = ("Riverton", "Oak Hollow", "Millbrook")
REGIONS = {
    "America/New_York": Region("NY", _TOWNS, "122", ("518", "315", "607", "585", "716", "845")),
    "America/Chicago": Region("IL", _TOWNS, "617", ("217", "309", "815", "618", "630", "847")),
    "America/Denver": Region("CO", _TOWNS, "805", ("303", "719", "720", "970")),
    "America/Phoenix": Region("AZ", _TOWNS, "853", ("480", "520", "602", "623", "928")),
    "America/Los_Angeles": Region("CA", _TOWNS, "956", ("209", "530", "559", "707", "916")),
}
# Added after a region's own codes when a large practice needs more distinct numbers.
NATIONAL_AREA_CODES = (
    "202", "404", "617", "713", "214", "305", "412", "502", "614", "704", "816", "901", "612",
    "503", "206", "801", "505", "405", "316", "402", "515", "608", "414", "313", "216", "317",
)  # fmt: skip


def region_for(zone: str) -> Region:
    """The region of a practice in `zone` (New York's for zones outside the table)."""
    return REGIONS.get(zone, REGIONS["America/New_York"])


@dataclass(frozen=True, slots=True)
class Site:
    """One of the practice's locations."""

    id: str
    name: str
    line: str
    city: str
    state: str
    postal_code: str
    phone: str


@dataclass(frozen=True, slots=True)
class Payer:
    """An insurer that pays for visits; `plans` are (plan value, plan name) pairs."""

    id: str
    name: str
    payer_code: str
    kind: str
    member_prefix: str
    plans: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Clinician:
    """A practitioner with role, schedule, and the half-day a week they do not see patients."""

    index: int
    id: str
    role_id: str
    schedule_id: str
    npi: str
    given: str
    family: str
    gender: str
    specialty: Specialty
    site_index: int
    day_off: tuple[int, int]


@dataclass(frozen=True, slots=True)
class Practice:
    """The organization with everything that does not depend on patients."""

    id: str
    name: str
    npi: str
    phone: str
    zone: str
    region: Region
    sites: tuple[Site, ...]
    payers: tuple[Payer, ...]
    clinicians: tuple[Clinician, ...]


def _payers(rng: random.Random, state: str) -> tuple[Payer, ...]:
    rows = (
        ("Medicare Part B", "MCR01", "medicare", "", (("MCR-B", "Original Medicare Part B"),)),
        (f"{state} Medicaid", "MCD01", "medicaid", "MD",
         (("MCD-STD", "Medicaid Standard"), ("MCD-CHIP", "Children's Health Insurance Program"))),
        ("Keystone Health Plan", "KHP01", "commercial", "KHP",
         (("KHP-PPO-G", "Gold PPO"), ("KHP-HMO-S", "Silver HMO"))),
        ("Lakeshore Mutual", "LSM01", "commercial", "LSM",
         (("LSM-PPO", "Choice PPO"), ("LSM-HDHP", "Bronze HDHP"))),
        ("Summit Care Alliance", "SCA01", "commercial", "SCA",
         (("SCA-EPO", "Select EPO"), ("SCA-PPO", "Premier PPO"))),
    )  # fmt: skip
    return tuple(Payer(new_id(rng), *row) for row in rows)


def _site_phone(region: Region, number: int) -> str:
    # 555-0100 to 555-0199 are the numbers reserved for fiction in North America.
    return f"+1{region.area_codes[0]}55501{number:02d}"


def _sites(rng: random.Random, region: Region, practice_name: str) -> tuple[Site, ...]:
    labels = ("Main Campus", "North Clinic", "Westside Clinic")
    sites = []
    for number, (label, town) in enumerate(zip(labels, region.towns, strict=True)):
        street_name = f"{rng.choice(names.STREET_NAMES)} {rng.choice(('St', 'Ave', 'Blvd'))}"
        street = f"{rng.randrange(100, 2999)} {street_name}"
        postal = f"{region.zip_prefix}{rng.randrange(10, 99)}"
        phone = _site_phone(region, 10 + number)
        sites.append(
            Site(
                new_id(rng), f"{practice_name} - {label}", street, town, region.state, postal, phone
            )
        )
    return tuple(sites)


def _clinicians(rng: random.Random, specialties: list[Specialty]) -> tuple[Clinician, ...]:
    clinicians = []
    primary_seen = specialists_seen = 0
    for index, specialty in enumerate(specialties):
        gender = rng.choice(("female", "male"))
        spanish = rng.random() < 0.2
        if spanish:
            pool = names.SPANISH_GIVEN_FEMALE if gender == "female" else names.SPANISH_GIVEN_MALE
            family = rng.choice(names.SPANISH_FAMILY)
        else:
            pool = names.ENGLISH_GIVEN_FEMALE if gender == "female" else names.ENGLISH_GIVEN_MALE
            family = rng.choice(names.ENGLISH_FAMILY)
        if specialty.primary_care:
            site_index = primary_seen % 3
            primary_seen += 1
        else:
            site_index = 1 if specialists_seen % 3 == 2 else 0
            specialists_seen += 1
        clinicians.append(
            Clinician(
                index=index,
                id=new_id(rng),
                role_id=new_id(rng),
                schedule_id=new_id(rng),
                npi=npi(rng),
                given=rng.choice(pool),
                family=family,
                gender=gender,
                specialty=specialty,
                site_index=site_index,
                day_off=(rng.randrange(5), rng.randrange(2)),
            )
        )
    return tuple(clinicians)


def build_practice(rng: random.Random, patients: int, zone: str) -> Practice:
    """The practice for `patients` patients in time zone `zone`."""
    region = region_for(zone)
    name = f"{region.towns[0]} Medical Group"
    return Practice(
        id=new_id(rng),
        name=name,
        npi=npi(rng, organization=True),
        phone=_site_phone(region, 0),
        zone=zone,
        region=region,
        sites=_sites(rng, region, name),
        payers=_payers(rng, region.state),
        clinicians=_clinicians(rng, roster(practitioner_count(patients))),
    )
