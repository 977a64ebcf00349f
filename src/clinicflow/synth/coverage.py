"""Insurance policies: which payer and plan cover whom; dependents share the policy (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import groupby

from clinicflow.synth.identifiers import mbi, member_id, new_id
from clinicflow.synth.people import Patient, age_on
from clinicflow.synth.practice import Payer

UNINSURED_SHARE = 0.08


@dataclass(frozen=True, slots=True)
class Policy:
    """A Coverage: `subscriber_index` is the patient who holds the policy."""

    id: str
    patient_index: int
    payer_index: int
    plan: tuple[str, str]
    subscriber_id: str
    relationship: str
    subscriber_index: int
    start_on: date
    updated_s: int


def _payer_index(rng: random.Random, payers: tuple[Payer, ...], age: int) -> int:
    kinds = [p.kind for p in payers]
    if age >= 65 and rng.random() < 0.85:
        return kinds.index("medicare")
    if age < 65 and rng.random() < 0.22:
        return kinds.index("medicaid")
    commercial = [i for i, kind in enumerate(kinds) if kind == "commercial"]
    return rng.choice(commercial)


def _subscriber_id(rng: random.Random, payer: Payer) -> str:
    if payer.kind == "medicare":
        return mbi(rng)
    if payer.kind == "medicaid":
        return f"{payer.member_prefix}{rng.randrange(10**8):08d}"
    return member_id(rng, payer.member_prefix)


def build_policies(
    rng: random.Random, patients: list[Patient], payers: tuple[Payer, ...], anchor_on: date
) -> list[Policy]:
    """Coverage for most patients; a household shares its subscriber's policy."""
    policies = []
    for _, members_iter in groupby(patients, key=lambda p: p.household):
        members = list(members_iter)
        if rng.random() < UNINSURED_SHARE:
            continue
        head = members[0]
        payer_index = _payer_index(rng, payers, age_on(head.birth_on, anchor_on))
        payer = payers[payer_index]
        plans = payer.plans
        if payer.kind == "medicaid":  # CHIP when only children are covered, else standard
            only_children = all(age_on(m.birth_on, anchor_on) < 18 for m in members)
            plans = plans[1:] if only_children else plans[:1]
        plan = rng.choice(plans)
        subscriber_id = _subscriber_id(rng, payer)
        start_on = anchor_on - timedelta(days=rng.randrange(30, 8 * 365))
        for member in members:
            # Medicare has no dependents: each beneficiary has their own identifier.
            own_id = payer.kind == "medicare" and member is not head
            policies.append(
                Policy(
                    id=new_id(rng),
                    patient_index=member.index,
                    payer_index=payer_index,
                    plan=plan,
                    subscriber_id=_subscriber_id(rng, payer) if own_id else subscriber_id,
                    relationship="self" if own_id else member.relationship,
                    subscriber_index=member.index if own_id else head.index,
                    start_on=max(start_on, member.birth_on),
                    updated_s=member.updated_s,
                )
            )
    return policies
