"""Write-back to a live EHR over FHIR: read, decide, write conditionally, never overwrite.

Each change is decided against the version the EHR holds now and written with that version's
ETag as `If-Match`. A 412 means someone changed the resource in the EHR between our read and our
write: we read it again and decide again (bounded), and if the change no longer makes sense (the
visit we meant to confirm was cancelled at the desk) we leave the EHR as it is and say why.
Creates carry an identifier made from the effect's idempotency key and are conditional on it, so
a retry after a lost answer finds the first copy instead of making a second.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from clinicflow.ehr.fhir_client import FhirClient, Versioned, client_from_settings
from clinicflow.ehr.prepare import prepare_resource
from clinicflow.ehr.replica_writer import write_resources
from clinicflow.engine import HandlerEnv, OutcomeUnknownError
from clinicflow.errors import EhrConflictError, EhrError
from clinicflow.security.audit import Actor
from clinicflow.settings import Settings

EFFECT_IDENTIFIER_SYSTEM = "urn:clinicflow:effect"
MAX_CONFLICT_RETRIES = 3

# Appointment statuses a change can no longer sensibly move away from.
_FINAL = frozenset({"fulfilled", "noshow", "cancelled", "entered-in-error"})


class Verdict(StrEnum):
    """What to do with a change, given what the EHR holds now."""

    APPLY = "apply"
    ALREADY = "already"  # the EHR already shows the change: nothing to write
    STALE = "stale"  # the change no longer makes sense: leave the EHR alone


@dataclass(frozen=True)
class Decision:
    """A verdict and, when it is not APPLY, why."""

    verdict: Verdict
    why: str = ""


def decide_status(current: Mapping[str, Any], status: str) -> Decision:
    """Whether to move an Appointment to `status` (cancelled, noshow, ...) from what it is now."""
    now_status = current.get("status")
    if now_status == status:
        return Decision(Verdict.ALREADY, f"it is already {status}")
    if now_status in _FINAL:
        return Decision(Verdict.STALE, f"it is {now_status} in the EHR now")
    return Decision(Verdict.APPLY)


def decide_book(current: Mapping[str, Any], start: str) -> Decision:
    """Whether a waitlist Appointment can still be booked into the time starting at `start`."""
    status = current.get("status")
    if status == "booked" and _same_instant(current.get("start"), start):
        return Decision(Verdict.ALREADY, "it is already booked at that time")
    if status != "waitlist":
        return Decision(Verdict.STALE, f"it is {status} in the EHR now, not on the waitlist")
    return Decision(Verdict.APPLY)


def _same_instant(a: object, b: str) -> bool:
    try:
        return isinstance(a, str) and datetime.fromisoformat(a) == datetime.fromisoformat(b)
    except ValueError:
        return False


def decide_confirm(current: Mapping[str, Any]) -> Decision:
    """Whether the patient's acceptance can still be recorded on this Appointment."""
    if current.get("status") in _FINAL:
        return Decision(Verdict.STALE, f"it is {current.get('status')} in the EHR now")
    for participant in current.get("participant") or ():
        reference = str((participant.get("actor") or {}).get("reference", ""))
        if reference.startswith("Patient/") or "/Patient/" in reference:
            if participant.get("status") == "accepted":
                return Decision(Verdict.ALREADY, "the patient has already accepted")
            return Decision(Verdict.APPLY)
    return Decision(Verdict.STALE, "it has no patient participant")


def for_ehr(resource: Mapping[str, Any]) -> dict[str, Any]:
    """The resource as we send it: the server, not us, stamps `meta.lastUpdated` and version."""
    sent = copy.deepcopy(dict(resource))
    meta = dict(sent.get("meta") or {})
    meta.pop("lastUpdated", None)
    meta.pop("versionId", None)
    if meta:
        sent["meta"] = meta
    else:
        sent.pop("meta", None)
    return sent


def with_effect_identifier(resource: Mapping[str, Any], effect_key: str) -> dict[str, Any]:
    """The resource with an identifier naming the effect that creates it (for If-None-Exist)."""
    made = copy.deepcopy(dict(resource))
    made.pop("id", None)
    identifiers = [
        i for i in made.get("identifier") or () if i.get("system") != EFFECT_IDENTIFIER_SYSTEM
    ]
    identifiers.append({"system": EFFECT_IDENTIFIER_SYSTEM, "value": effect_key})
    made["identifier"] = identifiers
    return made


def effect_token(effect_key: str) -> str:
    """The identifier token (`system|value`) naming what an effect created."""
    return f"{EFFECT_IDENTIFIER_SYSTEM}|{effect_key}"


def made_by_effect(resource: Mapping[str, Any], effect_key: str) -> bool:
    """Whether `resource` carries the identifier naming `effect_key` (not trusting the search:
    a server that ignores an unknown parameter answers with everything)."""
    return any(
        isinstance(i, dict)
        and i.get("system") == EFFECT_IDENTIFIER_SYSTEM
        and i.get("value") == effect_key
        for i in resource.get("identifier") or ()
    )


def effect_search(effect_key: str) -> str:
    """The search that finds what an effect created (an `If-None-Exist` value)."""
    return f"identifier={effect_token(effect_key)}"


_clients: dict[tuple[str, str | None], FhirClient] = {}
_clients_lock = threading.Lock()


def shared_client(settings: Settings) -> FhirClient:
    """One client per EHR and client id per process, so the access token is reused."""
    key = (str(settings.fhir_base_url), settings.fhir_client_id)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = client_from_settings(settings)
        return client


def store_returned(env: HandlerEnv, resource: Mapping[str, Any], automation: str) -> int:
    """Put the EHR's answer in the replica at once (events fire now, not at the next sync)."""
    result = write_resources(
        env.session,
        [prepare_resource(resource, env.cipher)],
        now=env.clock.now(),
        source="fhir",
        actor=Actor.automation(automation),
        action="write",
    )
    return result.events


def write_unknown(exc: EhrError, what: str) -> Exception:
    """A write whose answer never came may or may not have happened: the engine reconciles."""
    if exc.status is None:
        return OutcomeUnknownError(f"{what}: no answer from the EHR ({exc.message})")
    return exc


def update_with_retries(
    client: FhirClient,
    resource_type: str,
    fhir_id: str,
    change: Any,
) -> tuple[Decision, Versioned | None]:
    """Read, decide, write with If-Match; on 412 read and decide again, a few times at most.

    `change(current) -> (Decision, updated | None)` is pure.
    """
    for _attempt in range(MAX_CONFLICT_RETRIES):
        current = client.read(resource_type, fhir_id)
        decision, updated = change(current.resource)
        if decision.verdict is not Verdict.APPLY or updated is None:
            return decision, current
        try:
            return decision, client.update(for_ehr(updated), if_match=current.etag)
        except EhrConflictError:
            continue  # changed under us: read it again and decide again
    raise EhrError(
        f"{resource_type}/{fhir_id} kept changing in the EHR while we tried to update it "
        f"({MAX_CONFLICT_RETRIES} times); it was left as the EHR has it.",
        code="ehr.conflict",
        retryable=True,
    )
