"""Write-back of automation outcomes (confirmations, cancellations, new resources).

With an EHR connected, `remote_writeback` reads, decides and writes conditionally over FHIR.
With no EHR connected (the embedded default) a write-back applies to the replica and the resource
is marked `local_change` with source `local`: visible on the status page and in `status`, so
nobody mistakes it for something the EHR has accepted. The change itself is a pure function.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clinicflow.ehr import remote_writeback as remote
from clinicflow.ehr.late_references import resolve_pending_references
from clinicflow.ehr.prepare import prepare_resource
from clinicflow.ehr.replica_writer import write_resources
from clinicflow.ehr.validate import check_resource
from clinicflow.engine import Delivery, EffectCall, HandlerEnv, register_effect_handler
from clinicflow.errors import EhrError, InputError
from clinicflow.security.audit import Actor
from clinicflow.store.bodies import read_body
from clinicflow.store.replica import FhirResource

EHR_WRITE_BACK = "ehr.write_back"
CANCELATION_REASONS = "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason"


class Change(StrEnum):
    """What a write-back does."""

    SET_STATUS = "set-status"  # Appointment.status (cancelled with a reason, noshow, ...)
    CONFIRM = "confirm"  # the patient participant accepts (FHIR: participant.status accepted)
    CREATE = "create"  # a new Communication, Task or DocumentReference
    # A waitlist Appointment given a time: status booked, start and end, the slot, practitioner
    # and place; `resource` holds those fields (see `book_entry`).
    BOOK = "book"


@dataclass(frozen=True, slots=True)
class WriteBack:
    """One change to a resource, as recorded in an effect's payload."""

    change: Change
    resource_type: str
    fhir_id: str
    status: str | None = None
    reason_code: str | None = None
    resource: Mapping[str, Any] | None = None

    def to_payload(self) -> dict[str, Any]:
        """Plain data for the effect ledger (encrypted there: it may hold PHI)."""
        return {
            "change": str(self.change),
            "resource_type": self.resource_type,
            "fhir_id": self.fhir_id,
            "status": self.status,
            "reason_code": self.reason_code,
            "resource": dict(self.resource) if self.resource is not None else None,
        }

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> WriteBack:
        """Read a payload written by `to_payload`."""
        return cls(
            change=Change(payload["change"]),
            resource_type=str(payload["resource_type"]),
            fhir_id=str(payload["fhir_id"]),
            status=payload.get("status"),
            reason_code=payload.get("reason_code"),
            resource=payload.get("resource"),
        )


def apply_change(
    current: Mapping[str, Any] | None, change: WriteBack, now: datetime
) -> dict[str, Any]:
    """The resource after `change`, with `meta.lastUpdated` = now (pure; raises InputError)."""
    if change.change is Change.CREATE:
        if current is not None:
            raise InputError(f"{change.resource_type}/{change.fhir_id} already exists")
        if change.resource is None:
            raise InputError("a create needs the resource to create")
        updated = copy.deepcopy(dict(change.resource))
        updated.setdefault("resourceType", change.resource_type)
        updated.setdefault("id", change.fhir_id)
    else:
        if current is None:
            raise InputError(f"{change.resource_type}/{change.fhir_id} is not in the replica")
        updated = copy.deepcopy(dict(current))
        if change.change is Change.BOOK:
            updated = book_entry(updated, change.resource or {})
        elif change.change is Change.SET_STATUS:
            if not change.status:
                raise InputError("set-status needs a status")
            updated["status"] = change.status
            if change.status == "cancelled" and change.reason_code:
                updated["cancelationReason"] = {
                    "coding": [{"system": CANCELATION_REASONS, "code": change.reason_code}]
                }
        else:
            patients = [
                p
                for p in updated.get("participant") or []
                if str((p.get("actor") or {}).get("reference", "")).startswith("Patient/")
            ]
            if not patients:
                raise InputError(
                    f"{change.resource_type}/{change.fhir_id} has no patient participant"
                )
            patients[0]["status"] = "accepted"
    meta = dict(updated.get("meta") or {})
    meta["lastUpdated"] = now.isoformat()
    updated["meta"] = meta
    check_resource(updated)
    return updated


def booking(
    *,
    start: datetime,
    end: datetime,
    practitioner_id: str,
    location_id: str,
    slot_id: str | None,
) -> dict[str, Any]:
    """The fields a BOOK change writes, as its `resource`."""
    fields: dict[str, Any] = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "minutesDuration": round((end - start).total_seconds() / 60),
        "practitioner": practitioner_id,
        "location": location_id,
    }
    if slot_id:
        fields["slot"] = slot_id
    return fields


def book_entry(current: dict[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """A waitlist Appointment booked into the time in `fields` (pure; InputError otherwise).

    FHIR R4 keeps the request and the booking in one resource: a `waitlist` Appointment becomes
    `booked` with its start and end, so the EHR shows one visit with its history, not a request
    and a second visit. The patient said yes by claiming the offer, so their participation is
    `accepted`; the practitioner and place are the slot's.
    """
    where = f"Appointment/{current.get('id')}"
    if current.get("status") != "waitlist":
        raise InputError(
            f"{where} is no longer on the waitlist (it is {current.get('status')})",
            code="writeback.not_waitlist",
        )
    for name in ("start", "end", "practitioner", "location"):
        if not fields.get(name):
            raise InputError(f"a booking needs `{name}`", where=where)
    booked = dict(current)
    booked["status"] = "booked"
    booked["start"] = fields["start"]
    booked["end"] = fields["end"]
    booked["minutesDuration"] = fields.get("minutesDuration")
    if fields.get("slot"):
        booked["slot"] = [{"reference": f"Slot/{fields['slot']}"}]
    kept = [
        dict(p)
        for p in current.get("participant") or []
        if not str((p.get("actor") or {}).get("reference", "")).startswith(
            ("Practitioner/", "Location/")
        )
    ]
    for participant in kept:
        if str((participant.get("actor") or {}).get("reference", "")).startswith("Patient/"):
            participant["status"] = "accepted"
    kept.append(
        {"actor": {"reference": f"Practitioner/{fields['practitioner']}"}, "status": "accepted"}
    )
    kept.append({"actor": {"reference": f"Location/{fields['location']}"}, "status": "accepted"})
    booked["participant"] = kept
    return booked


class WriteBackHandler:
    """Carries out `ehr.write_back` effects: to the EHR when one is connected, else locally.

    Not transactional: with an EHR the write happens outside our database, so after a crash
    mid-call `reconcile` reads the EHR to tell whether it took. Without one, the change commits
    with the effect's `done`, so an effect that is not done did not happen.
    """

    reaches_patient = False
    transactional = False

    def execute(self, call: EffectCall, env: HandlerEnv) -> Mapping[str, object]:
        """Apply the change to the EHR (and the replica), or to the replica alone."""
        change = WriteBack.from_payload(call.payload)
        if env.settings.fhir_base_url:
            return _execute_remote(call, env, change)
        return _execute_local(call, env, change)

    def reconcile(self, call: EffectCall, env: HandlerEnv) -> Delivery:
        """After a crash mid-call: does the EHR show the change? (Locally it cannot have.)"""
        if not env.settings.fhir_base_url:
            return Delivery.NOT_DELIVERED
        change = WriteBack.from_payload(call.payload)
        client = remote.shared_client(env.settings)
        try:
            if change.change is Change.CREATE:
                query = {"identifier": remote.effect_token(call.key)}
                found = next(iter(client.search(change.resource_type, query)))
                made = any(
                    item.resource is not None and remote.made_by_effect(item.resource, call.key)
                    for item in found.items
                )
                return Delivery.DELIVERED if made else Delivery.NOT_DELIVERED
            current = client.read(change.resource_type, change.fhir_id).resource
        except EhrError:
            return Delivery.UNKNOWN
        verdict = _decide(current, change, env.clock.now())[0].verdict
        return Delivery.DELIVERED if verdict is remote.Verdict.ALREADY else Delivery.NOT_DELIVERED


def _decide(
    current: Mapping[str, Any], change: WriteBack, now: datetime
) -> tuple[remote.Decision, dict[str, Any] | None]:
    """The verdict on `change` against the EHR's current version, and the updated resource."""
    if change.change is Change.CONFIRM:
        decision = remote.decide_confirm(current)
    elif change.change is Change.SET_STATUS and change.status:
        decision = remote.decide_status(current, change.status)
    elif change.change is Change.BOOK:
        decision = remote.decide_book(current, str((change.resource or {}).get("start", "")))
    else:
        raise InputError(f"{change.change} cannot be applied to an existing resource")
    if decision.verdict is not remote.Verdict.APPLY:
        return decision, None
    return decision, apply_change(current, change, now)


def _execute_remote(call: EffectCall, env: HandlerEnv, change: WriteBack) -> Mapping[str, object]:
    client = remote.shared_client(env.settings)
    what = f"{change.change} {change.resource_type}/{change.fhir_id}"
    try:
        if change.change is Change.CREATE:
            if change.resource is None:
                raise InputError("a create needs the resource to create")
            made = remote.with_effect_identifier(change.resource, call.key)
            made.setdefault("resourceType", change.resource_type)
            created = client.create(
                remote.for_ehr(made), if_none_exist=remote.effect_search(call.key)
            )
            events = remote.store_returned(env, created.resource, call.automation)
            return {"applied": "ehr", "id": str(created.resource.get("id")), "events": events}
        decision, written = remote.update_with_retries(
            client,
            change.resource_type,
            change.fhir_id,
            lambda current: _decide(current, change, env.clock.now()),
        )
    except EhrError as exc:
        raise remote.write_unknown(exc, what) from exc
    if decision.verdict is remote.Verdict.APPLY and written is not None:
        events = remote.store_returned(env, written.resource, call.automation)
        return {"applied": "ehr", "version": written.etag or "", "events": events}
    # Nothing written: the EHR already shows it, or it no longer makes sense. Still refresh the
    # replica with what the EHR holds, so automations stop acting on the old version.
    if written is not None:
        remote.store_returned(env, written.resource, call.automation)
    return {"applied": str(decision.verdict), "why": decision.why}


def _execute_local(call: EffectCall, env: HandlerEnv, change: WriteBack) -> Mapping[str, object]:
    current = load_resource(env, change.resource_type, change.fhir_id)
    now = env.clock.now()
    updated = apply_change(current, change, now)
    result = write_resources(
        env.session,
        [prepare_resource(updated, env.cipher)],
        now=now,
        source="local",
        actor=Actor.automation(call.automation),
        action="write",
    )
    # Re-extraction leaves conditional references pending again; resolve them now, not at the
    # next sync, so the typed row keeps its practitioner, location and patient.
    resolve_pending_references(env.session)
    return {"applied": "local", "events": result.events}


def load_resource(env: HandlerEnv, resource_type: str, fhir_id: str) -> dict[str, Any] | None:
    """The stored resource, decrypted (the caller audits the write that follows)."""
    loaded: dict[str, Any] | None = read_body(env.session, env.cipher, resource_type, fhir_id)
    return loaded


def count_local_changes(session: Session) -> int:
    """Resources changed by clinicflow that no EHR has accepted (embedded mode)."""
    query = (
        select(func.count()).select_from(FhirResource).where(FhirResource.local_change.is_(True))
    )
    return int(session.execute(query).scalar_one())


register_effect_handler(EHR_WRITE_BACK, WriteBackHandler())
