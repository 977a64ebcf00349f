"""What a patient is sent back: only the pool's template, never an answer to what they asked."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from clinicflow.automations.triage.pools import POOLS, is_clinical
from clinicflow.automations.triage.replies import compose, kind_for, load_templates

TEMPLATES = load_templates()
DUE = datetime(2026, 12, 3, 16, 30, tzinfo=ZoneInfo("America/New_York"))


@given(
    pool=st.sampled_from(POOLS),
    language=st.sampled_from(["en", "es", "fr", ""]),
    link=st.one_of(st.none(), st.just("https://book.example.org")),
)
def test_a_clinical_message_gets_only_the_safety_or_receipt_template(
    pool: str, language: str, link: str | None
) -> None:
    reply = compose(
        TEMPLATES,
        pool=pool,
        language=language,
        practice="Sunrise",
        phone="+15555550100",
        due_local=DUE,
        booking_link=link,
    )
    lang = language if language in ("en", "es") else "en"
    if pool == "urgent":
        assert reply.kind == "safety"
        assert reply.text == TEMPLATES.texts["safety"][lang].substitute(practice="Sunrise")
    elif is_clinical(pool):
        assert reply.kind == "receipt"
        assert "911" in reply.text
        assert (link or "@@") not in reply.text
    else:
        assert reply.kind.startswith("acknowledgement")
        offered = link is not None and link in reply.text
        assert offered == (link is not None and pool == "appointment")


def test_the_safety_message_says_call_911_in_english_and_spanish() -> None:
    for language, words in (("en", "call 911"), ("es", "llame al 911")):
        reply = compose(
            TEMPLATES,
            pool="urgent",
            language=language,
            practice="Sunrise",
            phone=None,
            due_local=DUE,
            booking_link=None,
        )
        assert words in reply.text
        assert "988" in reply.text


def test_the_receipt_says_when_a_nurse_will_reply_in_the_patients_time() -> None:
    reply = compose(
        TEMPLATES,
        pool="clinical-question",
        language="en",
        practice="Sunrise",
        phone=None,
        due_local=DUE,
        booking_link=None,
    )
    assert reply.text == (
        "Sunrise: we received your message. A nurse will reply by Thu 3 Dec, 4:30 PM. "
        "If this is an emergency, call 911."
    )
    spanish = compose(
        TEMPLATES,
        pool="billing",
        language="es",
        practice="Sunrise",
        phone="+15555550100",
        due_local=DUE,
        booking_link=None,
    )
    assert "jueves 3 de diciembre, 16:30" in spanish.text
    assert "Nuestro equipo de facturación" in spanish.text


def test_only_appointment_messages_get_the_booking_link() -> None:
    assert kind_for("appointment", has_booking_link=True) == "acknowledgement+booking"
    assert kind_for("appointment", has_booking_link=False) == "acknowledgement"
    assert kind_for("billing", has_booking_link=True) == "acknowledgement"
    assert kind_for("medication", has_booking_link=True) == "receipt"
