"""FHIR resources the EHR tests put on the peer."""

from __future__ import annotations

from datetime import datetime, timedelta

VISIT_MINUTES = 20


def appointment(
    n: int,
    first_start: datetime,
    *,
    status: str = "booked",
    participant_status: str = "needs-action",
) -> dict[str, object]:
    """Appointment a{n} for Patient/p{n}, the n-th 20-minute visit after `first_start`."""
    start = first_start + timedelta(minutes=VISIT_MINUTES * n)
    return {
        "resourceType": "Appointment",
        "id": f"a{n}",
        "status": status,
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=VISIT_MINUTES)).isoformat(),
        "participant": [{"actor": {"reference": f"Patient/p{n}"}, "status": participant_status}],
    }
