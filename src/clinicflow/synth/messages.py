"""Portal messages of the last three weeks, with clinic replies and patients' thanks (pure)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from clinicflow.synth import texts
from clinicflow.synth.identifiers import new_id
from clinicflow.synth.people import Patient, age_on
from clinicflow.synth.timeline import DAY_S

WRITER_SHARE = 0.02
WINDOW_DAYS = 21
URGENT_SHARE = 0.04
REPLY_SHARE = 0.45
FOLLOW_UP_SHARE = 0.3
TOPIC_WEIGHTS = {"appointment": 30, "refill": 25, "billing": 12, "results": 18, "symptom": 15}


@dataclass(frozen=True, slots=True)
class Message:
    """A Communication; `urgent` is ground truth for tests and is not written to FHIR."""

    id: str
    patient: int
    clinician: int
    sent_s: int
    topic: str
    language: str
    text: str
    from_patient: bool
    reply_to: str | None
    urgent: bool


def _writers(rng: random.Random, patients: Sequence[Patient], anchor_on: date) -> list[Patient]:
    """Adult patients who write, Spanish speakers in proportion (at least one if there are any)."""
    adults = [p for p in patients if age_on(p.birth_on, anchor_on) >= 18]
    spanish = [p for p in adults if p.language == "es"]
    others = [p for p in adults if p.language != "es"]
    wanted = max(3, round(len(patients) * WRITER_SHARE))
    from_spanish = min(len(spanish), max(1, round(wanted * 0.2)))
    chosen = rng.sample(spanish, from_spanish) + rng.sample(
        others, min(len(others), wanted - from_spanish)
    )
    return sorted(chosen, key=lambda p: p.index)


def _fill(rng: random.Random, template: str, language: str) -> str:
    return template.format(
        med=rng.choice(texts.MEDICATIONS[language]),
        test=rng.choice(texts.TESTS[language]),
        amount=rng.choice((45, 85, 120, 145, 210, 320, 475)),
    )


def _conversation(
    rng: random.Random, patient: Patient, language: str, urgent: bool, as_of_s: int
) -> list[Message]:
    """A patient's message, and for some an answer from the clinic and a thank-you."""
    clinician = patient.gp_index
    if urgent:  # recent and unanswered: triage has to catch these first
        sent_s = as_of_s - rng.randrange(600, 18 * 3600)
        text = rng.choice(texts.URGENT_TEXTS[language])
        topic = "symptom"
    else:
        sent_s = as_of_s - rng.randrange(3600, WINDOW_DAYS * DAY_S)
        topic = rng.choices(tuple(TOPIC_WEIGHTS), weights=tuple(TOPIC_WEIGHTS.values()))[0]
        text = _fill(rng, rng.choice(texts.PATIENT_TEXTS[(topic, language)]), language)
    first = Message(
        new_id(rng), patient.index, clinician, sent_s, topic, language, text, True, None, urgent
    )
    thread = [first]
    reply_s = sent_s + rng.randrange(2 * 3600, 30 * 3600)
    if urgent or reply_s >= as_of_s or rng.random() >= REPLY_SHARE:
        return thread
    reply_text = texts.CLINIC_REPLIES[(topic, language)]
    reply = Message(
        new_id(rng), patient.index, clinician, reply_s, topic, language, reply_text, False,
        first.id, False,
    )  # fmt: skip
    thread.append(reply)
    thanks_s = reply_s + rng.randrange(3600, DAY_S)
    if thanks_s < as_of_s and rng.random() < FOLLOW_UP_SHARE:
        thanks = rng.choice(texts.FOLLOW_UPS[language])
        thread.append(
            Message(
                new_id(rng),
                patient.index,
                clinician,
                thanks_s,
                topic,
                language,
                thanks,
                True,
                reply.id,
                False,
            )
        )
    return thread


def plan_messages(
    rng: random.Random, patients: Sequence[Patient], anchor_on: date, as_of_s: int
) -> list[Message]:
    """Messages from about 2% of patients, oldest first; each language has an urgent one."""
    messages: list[Message] = []
    urgent_due = {"en": True, "es": True}
    for patient in _writers(rng, patients, anchor_on):
        language = "es" if patient.language == "es" else "en"
        for _ in range(1 if rng.random() < 0.8 else 2):
            urgent = urgent_due[language] or rng.random() < URGENT_SHARE
            urgent_due[language] = False
            messages.extend(_conversation(rng, patient, language, urgent, as_of_s))
    return sorted(messages, key=lambda m: (m.sent_s, m.id))
