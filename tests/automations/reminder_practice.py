"""A small practice for reminder tests: patients with phones and e-mail, a doctor, a clinic, visits.

Resources go into a real store through `sync_folder`, as an EHR export would; a change (a
reschedule) is the same resource again with a later `meta.lastUpdated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from clinicflow.channels import list_outbox
from clinicflow.channels.inbound import store_inbound
from clinicflow.channels.sandbox import OutboxMessage
from clinicflow.clock import FakeClock
from clinicflow.ehr import sync_folder
from clinicflow.engine import (
    Automation,
    EngineRuntime,
    InlineEnqueuer,
    Registry,
    RunOutcome,
    dispatch_events,
    run_now,
)
from clinicflow.security.audit import Actor
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database

Resource = dict[str, Any]
DOCTOR = {
    "resourceType": "Practitioner",
    "id": "dr1",
    "name": [{"prefix": ["Dr."], "given": ["Ana"], "family": "Ruiz"}],
}
CLINIC = {
    "resourceType": "Location",
    "id": "loc1",
    "name": "Main St Clinic",
    "address": {"line": ["12 Main St"]},
}


def patient(
    pid: str,
    first: str,
    *,
    mobile: str | None = None,
    email: str | None = None,
    language: str | None = None,
    prefer_email: bool = False,
) -> Resource:
    """A patient with a mobile and/or an e-mail (rank 1 is preferred)."""
    telecom = []
    if mobile:
        telecom.append(
            {"system": "phone", "use": "mobile", "value": mobile, "rank": 2 if prefer_email else 1}
        )
    if email:
        telecom.append({"system": "email", "value": email, "rank": 1 if prefer_email else 2})
    resource: Resource = {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"given": [first], "family": "Lopez"}],
        "telecom": telecom,
    }
    if language:
        resource["communication"] = [
            {"language": {"coding": [{"system": "urn:ietf:bcp:47", "code": language}]}}
        ]
    return resource


def visit(
    aid: str,
    pid: str,
    start: datetime,
    *,
    booked: datetime,
    status: str = "booked",
    updated: datetime | None = None,
) -> Resource:
    """A 20-minute visit with Dr. Ruiz at the clinic, for a reason the reminder must not say."""
    return {
        "resourceType": "Appointment",
        "id": aid,
        "meta": {"lastUpdated": (updated or booked).isoformat()},
        "status": status,
        "created": booked.isoformat(),
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=20)).isoformat(),
        "reasonCode": [{"text": "Secret reason: HIV follow-up"}],
        "participant": [
            {"actor": {"reference": f"Patient/{pid}"}, "status": "needs-action"},
            {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"},
            {"actor": {"reference": "Location/loc1"}, "status": "accepted"},
        ],
    }


@dataclass
class Practice:
    """A store with the practice in it and an engine running the reminder automations."""

    rt: EngineRuntime
    cipher: PhiCipher
    clock: FakeClock
    folder: Path
    synced: int = field(default=0)

    def sync(self, *resources: Resource) -> None:
        """Ingest these resources as the next export from the EHR."""
        self.synced += 1
        out = self.folder / f"export-{self.synced}"
        out.mkdir()
        by_type: dict[str, list[bytes]] = {}
        for resource in resources:
            by_type.setdefault(resource["resourceType"], []).append(orjson.dumps(resource))
        for rtype, lines in by_type.items():
            (out / f"{rtype}.ndjson").write_bytes(b"\n".join(lines) + b"\n")
        report = sync_folder(self.rt.db, self.cipher, self.clock, out)
        assert not report.rejected, report.rejected

    def remind(self) -> RunOutcome:
        """One run of appointment-reminders, effects carried out at once."""
        return run_now(self.rt, "appointment-reminders", requested_by="test")

    def handle_events(self) -> int:
        """Dispatch stored events to their automations and run them with their effects; how
        many runs that made."""
        with self.rt.db.transaction() as session:
            runs = dispatch_events(session, registry=self.rt.registry, now=self.clock.now())
        enqueuer = InlineEnqueuer(self.rt)
        for run_id in runs:
            enqueuer.enqueue_run(run_id)
        return len(runs)

    def receive_text(self, body: str, sid: str, sender: str) -> None:
        """A text from `sender`, stored as the Twilio webhook stores it, and what it causes."""
        with self.rt.db.transaction() as session:
            store_inbound(
                session,
                self.cipher,
                provider_id=sid,
                channel="sms",
                sender=sender,
                contact_digest=self.cipher.blind_index("phone", sender),
                body=body,
                received_at=self.clock.now(),
            )
        self.settle()

    def settle(self, rounds: int = 6) -> None:
        """Handle events until none are left: the events runs raise are handled too."""
        for _ in range(rounds):
            if not self.handle_events():
                return
        raise AssertionError(f"events still raising events after {rounds} rounds")

    def outbox(self) -> list[OutboxMessage]:
        """What the sandbox delivered, oldest first."""
        with self.rt.db.transaction() as session:
            messages = list_outbox(
                session, self.cipher, reader=Actor.user("test"), now=self.clock.now()
            )
        return list(reversed(messages))


def build_practice(
    db: Database,
    clock: FakeClock,
    folder: Path,
    *,
    now: datetime,
    extra: Sequence[Automation] = (),
) -> Practice:
    """The practice with its doctor and clinic synced, the clock at `now`, both reminder
    automations registered (and `extra` ones)."""
    from clinicflow.automations.reminders import AUTOMATION as REMINDERS
    from clinicflow.automations.replies import AUTOMATION as REPLIES

    clock.set(now)
    cipher = PhiCipher(Keyring.generate())
    rt = EngineRuntime.build(
        db=db,
        settings=Settings(
            data_dir=folder, timezone="America/New_York", practice_name="Sunrise Clinic"
        ),
        clock=clock,
        cipher=cipher,
        registry=Registry([REMINDERS, REPLIES, *extra]),
    )
    practice = Practice(rt, cipher, clock, folder)
    practice.sync(DOCTOR, CLINIC)
    return practice
