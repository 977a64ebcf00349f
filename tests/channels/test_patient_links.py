"""Signed patient links: they round-trip, expire, and refuse tampering or another purpose."""

from __future__ import annotations

from datetime import timedelta

import pytest

from clinicflow.channels.patient_links import (
    LinkPurpose,
    contact_digest,
    make_link,
    read_link,
)
from clinicflow.clock import FakeClock
from clinicflow.errors import InputError

SECRET = b"k" * 32
PUBLIC_URL = "https://clinic.example/"
DAY_S = 24 * 3600


def _token(link: str) -> str:
    return link.rsplit("/", 1)[1]


def test_a_visit_link_round_trips_its_ids(clock: FakeClock) -> None:
    payload = {"appointment": "Appointment/9", "touchpoint": "48h"}
    link = make_link(SECRET, PUBLIC_URL, LinkPurpose.VISIT, payload, now=clock.now())
    assert link.startswith("https://clinic.example/visit/")
    clock.advance(timedelta(days=2))
    read = read_link(SECRET, _token(link), LinkPurpose.VISIT, 7 * DAY_S, now=clock.now())
    assert read == payload


def test_a_link_past_its_age_says_it_expired_and_to_call(clock: FakeClock) -> None:
    link = make_link(SECRET, PUBLIC_URL, LinkPurpose.VISIT, {"appointment": "9"}, now=clock.now())
    clock.advance(timedelta(days=7, seconds=1))
    with pytest.raises(InputError) as caught:
        read_link(SECRET, _token(link), LinkPurpose.VISIT, 7 * DAY_S, now=clock.now())
    assert caught.value.message == "This link has expired; please call the practice."
    assert caught.value.code == "link.expired"


def test_a_tampered_link_is_not_valid(clock: FakeClock) -> None:
    token = _token(
        make_link(SECRET, PUBLIC_URL, LinkPurpose.VISIT, {"appointment": "9"}, now=clock.now())
    )
    payload, rest = token.split(".", 1)
    forged = make_link(
        SECRET, PUBLIC_URL, LinkPurpose.VISIT, {"appointment": "10"}, now=clock.now()
    )
    tampered = _token(forged).split(".", 1)[0] + "." + rest
    assert payload != _token(forged).split(".", 1)[0]
    for bad in (tampered, token[:-2], "nonsense"):
        with pytest.raises(InputError) as caught:
            read_link(SECRET, bad, LinkPurpose.VISIT, DAY_S, now=clock.now())
        assert caught.value.message == "This link is not valid; please call the practice."
        assert caught.value.code == "link.invalid"


def test_a_link_for_one_purpose_is_refused_for_another(clock: FakeClock) -> None:
    link = make_link(
        SECRET, PUBLIC_URL, LinkPurpose.UNSUBSCRIBE, {"contact": "ab12"}, now=clock.now()
    )
    with pytest.raises(InputError, match="not valid"):
        read_link(SECRET, _token(link), LinkPurpose.VISIT, DAY_S, now=clock.now())


def test_a_link_signed_with_another_secret_is_refused(clock: FakeClock) -> None:
    link = make_link(
        b"o" * 32, PUBLIC_URL, LinkPurpose.VISIT, {"appointment": "9"}, now=clock.now()
    )
    with pytest.raises(InputError, match="not valid"):
        read_link(SECRET, _token(link), LinkPurpose.VISIT, DAY_S, now=clock.now())


def test_links_signed_before_a_key_rotation_still_read(clock: FakeClock) -> None:
    old, new = b"o" * 32, b"n" * 32
    link = make_link(old, PUBLIC_URL, LinkPurpose.VISIT, {"appointment": "9"}, now=clock.now())
    read = read_link([old, new], _token(link), LinkPurpose.VISIT, DAY_S, now=clock.now())
    assert read == {"appointment": "9"}


def test_an_unsubscribe_link_carries_a_digest_never_the_address(clock: FakeClock) -> None:
    digest = contact_digest(SECRET, " Ana.Nunez@Example.org ")
    assert digest == contact_digest(SECRET, "ana.nunez@example.org")
    assert digest != contact_digest(b"o" * 32, "ana.nunez@example.org")
    link = make_link(
        SECRET, PUBLIC_URL, LinkPurpose.UNSUBSCRIBE, {"contact": digest}, now=clock.now()
    )
    assert "nunez" not in link
    with pytest.raises(ValueError, match="contact_digest"):
        make_link(
            SECRET,
            PUBLIC_URL,
            LinkPurpose.UNSUBSCRIBE,
            {"contact": "ana.nunez@example.org"},
            now=clock.now(),
        )


def test_a_short_secret_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        make_link(b"short", PUBLIC_URL, LinkPurpose.VISIT, {"appointment": "9"}, now=clock.now())
