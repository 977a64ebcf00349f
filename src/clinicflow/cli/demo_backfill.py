"""The demo's story of a freed slot: a visit is cancelled at the front desk, the waitlist fills it.

One upcoming visit whose provider has patients waiting is cancelled the way the EHR would report
it (the replica's copy changes, which raises `appointment.cancelled`), and the events are handled
at once, so the demo's outbox shows the waitlist offers and the Automations page the freed slot.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Select, func, or_, select

from clinicflow.cli.runtime import Runtime
from clinicflow.ehr.prepare import prepare_resource
from clinicflow.ehr.replica_writer import write_resources
from clinicflow.ehr.writeback import Change, WriteBack, apply_change
from clinicflow.engine import EngineRuntime, InlineEnqueuer, dispatch_events
from clinicflow.security.audit import Actor
from clinicflow.store.bodies import open_body
from clinicflow.store.engine import Event
from clinicflow.store.replica import Appointment, FhirResource
from clinicflow.store.waitlist import WaitlistOffer

CANDIDATES = 300  # the soonest upcoming visits looked at for one with patients waiting


def _waiting_for(visit: Appointment) -> Select[int]:
    day = visit.start_at.date() if visit.start_at else None
    return (
        select(func.count())
        .select_from(Appointment)
        .where(
            Appointment.status == "waitlist",
            or_(
                Appointment.practitioner_id == visit.practitioner_id,
                Appointment.practitioner_id.is_(None)
                & (Appointment.service_type == visit.service_type),
            ),
            or_(Appointment.requested_start_on.is_(None), Appointment.requested_start_on <= day),
            or_(Appointment.requested_end_on.is_(None), Appointment.requested_end_on >= day),
        )
    )


def _handle_events(rt: Runtime, engine: EngineRuntime, rounds: int = 100) -> None:
    """Dispatch every pending event (the sync's too) and run what they trigger, inline."""
    for _ in range(rounds):
        with rt.db.transaction() as session:
            runs = dispatch_events(session, registry=engine.registry, now=rt.clock.now())
            left = session.scalar(
                select(func.count()).select_from(Event).where(Event.dispatched_at.is_(None))
            )
        for run_id in runs:
            InlineEnqueuer(engine).enqueue_run(run_id)
        if not runs and not left:
            return


def cancel_one_visit(rt: Runtime, engine: EngineRuntime) -> str | None:
    """Cancel the soonest visit (a day or more ahead) with the most patients waiting for its
    provider, handle the events it raises; what happened, in a line."""
    now = rt.clock.now()
    with rt.db.transaction() as session:
        visits = list(
            session.scalars(
                select(Appointment)
                .where(
                    Appointment.status == "booked",
                    Appointment.start_at > now + timedelta(days=1),
                    Appointment.start_at < now + timedelta(days=8),
                )
                .order_by(Appointment.start_at)
                .limit(CANDIDATES)
            )
        )
        counted = [(session.scalar(_waiting_for(v)) or 0, v) for v in visits]
        best = max(counted, key=lambda c: c[0], default=(0, None))
        if best[1] is None or best[0] == 0:
            return None
        visit = best[1]
        body = session.scalars(
            select(FhirResource.body).where(
                FhirResource.resource_type == "Appointment", FhirResource.fhir_id == visit.fhir_id
            )
        ).one()
        current = open_body(rt.cipher, body, "Appointment", visit.fhir_id)
        change = WriteBack(
            Change.SET_STATUS, "Appointment", visit.fhir_id, status="cancelled", reason_code="pat"
        )
        write_resources(
            session,
            [prepare_resource(apply_change(current, change, now), rt.cipher)],
            now=now,
            source="local",
            actor=Actor.system("demo"),
            action="write",
        )
    _handle_events(rt, engine)
    with rt.db.transaction() as session:
        offers = session.scalar(select(func.count()).select_from(WaitlistOffer)) or 0
    return (
        f"a visit {visit.start_at:%a %d %b} was cancelled at the front desk: "
        f"{offers} waitlist patient(s) offered the slot (texts wait for 8:00-21:00 in each "
        "patient's zone; `clinicflow outbox list` shows what has gone out)"
    )
