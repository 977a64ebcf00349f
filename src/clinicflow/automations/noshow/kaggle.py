"""The public "Medical Appointment No Shows" data set (Kaggle, Vitória, Brazil, 2016) as visits.

Mapping to the replica's features: Neighbourhood is the location; SMS_received is one reminder
(Kaggle does not say when it went out, so it counts as sent at booking); Scholarship and the
condition flags become the optional `Conditions`; there is no provider, visit type, confirmation
or time of day (AppointmentDay is always midnight), so those are "unknown". Dates are taken as
UTC days, as written (`...Z`).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from clinicflow.automations.noshow.records import Conditions, Outcome, Sex, Visit
from clinicflow.errors import InputError

COLUMNS = (
    "PatientId",
    "AppointmentID",
    "Gender",
    "ScheduledDay",
    "AppointmentDay",
    "Age",
    "Neighbourhood",
    "Scholarship",
    "Hipertension",
    "Diabetes",
    "Alcoholism",
    "Handcap",
    "SMS_received",
    "No-show",
)
# "No-show" answers the question "did the patient miss it?"
_OUTCOMES = {"Yes": Outcome.NOSHOW, "No": Outcome.ATTENDED}
_SEXES = {"F": Sex.FEMALE, "M": Sex.MALE}
MAX_AGE = 120


@dataclass(frozen=True, slots=True)
class RejectedRow:
    """A row left out, with the line it was on and why."""

    line: int
    appointment_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class KaggleData:
    """The visits read from the file and the rows left out."""

    visits: list[Visit]
    rejected: list[RejectedRow]


def _flag(row: Mapping[str, str], column: str) -> bool:
    value = row[column].strip()
    if value not in ("0", "1"):
        raise ValueError(f"{column} is {value!r}, expected 0 or 1")
    return value == "1"


def _instant(row: Mapping[str, str], column: str) -> datetime:
    try:
        return datetime.fromisoformat(row[column].strip())
    except ValueError:
        raise ValueError(f"{column} {row[column]!r} is not an ISO 8601 instant") from None


def visit_from_row(row: Mapping[str, str]) -> Visit:
    """One CSV row as a visit; ValueError says what is wrong with the row."""
    booked_at, start_at = _instant(row, "ScheduledDay"), _instant(row, "AppointmentDay")
    if start_at.tzinfo is None or booked_at.tzinfo is None:
        raise ValueError("ScheduledDay and AppointmentDay must carry a time zone (Z)")
    if start_at.date() < booked_at.date():
        raise ValueError(f"AppointmentDay {start_at.date()} is before ScheduledDay {booked_at}")
    age = int(row["Age"]) if row["Age"].strip().lstrip("-").isdigit() else None
    if age is None or not 0 <= age <= MAX_AGE:
        raise ValueError(f"Age {row['Age']!r} is not between 0 and {MAX_AGE}")
    if row["No-show"] not in _OUTCOMES:
        raise ValueError(f"No-show is {row['No-show']!r}, expected Yes or No")
    handicap = row["Handcap"].strip()
    if handicap not in ("0", "1", "2", "3", "4"):
        raise ValueError(f"Handcap is {handicap!r}, expected 0 to 4")
    return Visit(
        visit_id=row["AppointmentID"].strip(),
        patient_id=row["PatientId"].strip(),
        start_at=start_at,
        booked_at=booked_at,
        outcome=_OUTCOMES[row["No-show"]],
        has_time_of_day=False,
        location_id=row["Neighbourhood"].strip() or None,
        age_years=age,
        sex=_SEXES.get(row["Gender"].strip(), Sex.UNKNOWN),
        reminders_sent_at=(booked_at,) if _flag(row, "SMS_received") else (),
        conditions=Conditions(
            scholarship=_flag(row, "Scholarship"),
            hypertension=_flag(row, "Hipertension"),
            diabetes=_flag(row, "Diabetes"),
            alcoholism=_flag(row, "Alcoholism"),
            handicap_level=int(handicap),
        ),
    )


def parse_rows(rows: Iterator[dict[str, str]]) -> KaggleData:
    """Visits from CSV rows (the header already read); bad and repeated rows are left out."""
    visits: list[Visit] = []
    rejected: list[RejectedRow] = []
    seen: set[str] = set()
    for line, row in enumerate(rows, start=2):
        appointment_id = (row.get("AppointmentID") or "").strip()
        if appointment_id in seen:
            rejected.append(RejectedRow(line, appointment_id, "AppointmentID appears twice"))
            continue
        try:
            visit = visit_from_row(row)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            rejected.append(RejectedRow(line, appointment_id, str(exc)))
            continue
        seen.add(appointment_id)
        visits.append(visit)
    return KaggleData(visits=visits, rejected=rejected)


def read_kaggle(path: Path) -> KaggleData:
    """Read KaggleV2-May-2016.csv; a missing file or a wrong header is an InputError."""
    if not path.is_file():
        raise InputError(
            "the file does not exist; pass the path of KaggleV2-May-2016.csv",
            where=str(path),
            code="noshow.kaggle_missing",
        )
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"not the Kaggle no-show file: the header lacks {', '.join(missing)}",
                where=f"{path}:1",
                code="noshow.kaggle_header",
            )
        return parse_rows(iter(reader))
