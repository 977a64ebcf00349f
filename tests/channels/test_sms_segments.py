"""SMS segment counting: the numbers carriers bill by."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from clinicflow.channels.sms_segments import GSM_BASIC, Encoding, count_segments


def test_plain_english_reminders_use_gsm7_up_to_160_in_one_segment():
    found = count_segments("a" * 160)
    assert (found.encoding, found.segments) == (Encoding.GSM7, 1)
    assert count_segments("a" * 161).segments == 2
    assert count_segments("a" * 306).segments == 2  # 153 per segment once split
    assert count_segments("a" * 307).segments == 3


def test_extension_characters_count_twice():
    found = count_segments("€" * 80)
    assert (found.encoding, found.units, found.segments) == (Encoding.GSM7, 160, 1)
    assert count_segments("[" * 81).segments == 2


def test_one_spanish_accent_sends_the_whole_text_as_ucs2():
    text = "Su cita es el martes a las 10:00. Responda C para confirmar. Gracias por su atención"
    found = count_segments(text)
    assert found.encoding is Encoding.UCS2
    assert found.non_gsm == "ó"
    assert found.segments == 2  # 84 characters: over UCS-2's 70
    assert count_segments("ñ é ü à").encoding is Encoding.GSM7  # these are in GSM-7


def test_an_emoji_takes_two_ucs2_units():
    assert count_segments("🙂" * 35).units == 70
    assert count_segments("🙂" * 35).segments == 1
    assert count_segments("🙂" * 36).segments == 2


@given(st.text(alphabet=sorted(GSM_BASIC), max_size=2000))
def test_gsm_text_segments_follow_the_160_153_rule(text):
    found = count_segments(text)
    n = len(text)
    assert found.encoding is Encoding.GSM7
    expected = 0 if n == 0 else 1 if n <= 160 else -(-n // 153)
    assert found.segments == expected
