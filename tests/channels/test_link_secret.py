"""Link secrets from the PHI keys, and the visit and unsubscribe links reminders carry."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from clinicflow.channels.link_secret import (
    UNSUBSCRIBE_LINK_MAX_AGE,
    VISIT_LINK_MAX_AGE,
    VisitLink,
    link_secrets,
    read_unsubscribe_link,
    read_visit_link,
    unsubscribe_link,
    visit_link,
)
from clinicflow.clock import FakeClock
from clinicflow.errors import InputError
from clinicflow.security.phi import Keyring
from clinicflow.settings import Settings

DIGEST = "3f1c0a9b8e7d6c5b4a39281706f5e4d3"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, public_url="https://clinic.example/")


def _token(link: str) -> str:
    return urlsplit(link).path.rsplit("/", 1)[1]


def _rotated(ring: Keyring) -> Keyring:
    """The ring after a PHI key rotation: a new active key, the old one kept to decrypt."""
    return Keyring(
        active=Keyring.generate().active,
        index_key=ring.index_key,
        previous=[ring.active, *ring.previous],
    )


def test_each_phi_key_gives_its_own_32_byte_secret_active_key_first() -> None:
    ring = _rotated(Keyring.generate())
    secrets = link_secrets(ring)
    assert len(secrets) == 2
    assert all(len(secret) == 32 for secret in secrets)
    assert secrets[0] == link_secrets(Keyring(active=ring.active, index_key=ring.index_key))[0]
    assert secrets[0] != secrets[1]
    assert ring.active not in secrets  # derived, never the encryption key itself


def test_the_same_key_always_derives_the_same_secret() -> None:
    ring = Keyring.generate()
    assert link_secrets(ring) == link_secrets(Keyring.from_json(ring.to_json()))


def test_a_visit_link_reads_back_its_visits_and_contact(
    settings: Settings, clock: FakeClock
) -> None:
    ring = Keyring.generate()
    link = visit_link(
        settings, ring, appointment_ids=["a1", "a-2.b"], contact_digest=DIGEST, now=clock.now()
    )
    assert link.startswith("https://clinic.example/visit/")
    read = read_visit_link(ring, _token(link), now=clock.now())
    assert read == VisitLink(appointment_ids=("a1", "a-2.b"), contact_digest=DIGEST)


def test_a_visit_link_opens_on_day_29_and_not_after_its_max_age(
    settings: Settings, clock: FakeClock
) -> None:
    ring = Keyring.generate()
    link = visit_link(
        settings, ring, appointment_ids=["a1"], contact_digest=DIGEST, now=clock.now()
    )
    clock.advance(timedelta(days=29))
    assert read_visit_link(ring, _token(link), now=clock.now()).appointment_ids == ("a1",)
    clock.advance(VISIT_LINK_MAX_AGE - timedelta(days=29) + timedelta(seconds=1))
    with pytest.raises(InputError) as caught:
        read_visit_link(ring, _token(link), now=clock.now())
    assert caught.value.code == "link.expired"


def test_an_unsubscribe_link_still_works_eleven_months_later(
    settings: Settings, clock: FakeClock
) -> None:
    ring = Keyring.generate()
    link = unsubscribe_link(settings, ring, contact_digest=DIGEST, now=clock.now())
    assert link.startswith("https://clinic.example/unsubscribe/")
    clock.advance(timedelta(days=335))
    assert read_unsubscribe_link(ring, _token(link), now=clock.now()) == DIGEST
    clock.advance(UNSUBSCRIBE_LINK_MAX_AGE)
    with pytest.raises(InputError, match="expired"):
        read_unsubscribe_link(ring, _token(link), now=clock.now())


def test_a_link_made_before_a_phi_key_rotation_still_verifies_after_it(
    settings: Settings, clock: FakeClock
) -> None:
    before = Keyring.generate()
    link = visit_link(
        settings, before, appointment_ids=["a1"], contact_digest=DIGEST, now=clock.now()
    )
    after = _rotated(before)
    assert read_visit_link(after, _token(link), now=clock.now()).appointment_ids == ("a1",)
    # Once the old key is dropped (re-encryption finished and the key retired), so is the link.
    retired = Keyring(active=after.active, index_key=after.index_key)
    with pytest.raises(InputError) as caught:
        read_visit_link(retired, _token(link), now=clock.now())
    assert caught.value.code == "link.invalid"


def test_new_links_are_signed_with_the_active_key(settings: Settings, clock: FakeClock) -> None:
    after = _rotated(Keyring.generate())
    link = unsubscribe_link(settings, after, contact_digest=DIGEST, now=clock.now())
    active_only = Keyring(active=after.active, index_key=after.index_key)
    assert read_unsubscribe_link(active_only, _token(link), now=clock.now()) == DIGEST


def test_another_practice_key_and_another_purpose_are_refused(
    settings: Settings, clock: FakeClock
) -> None:
    ring = Keyring.generate()
    unsubscribe = unsubscribe_link(settings, ring, contact_digest=DIGEST, now=clock.now())
    with pytest.raises(InputError, match="not valid"):
        read_visit_link(ring, _token(unsubscribe), now=clock.now())
    visit = visit_link(
        settings, ring, appointment_ids=["a1"], contact_digest=DIGEST, now=clock.now()
    )
    with pytest.raises(InputError, match="not valid"):
        read_visit_link(Keyring.generate(), _token(visit), now=clock.now())


@pytest.mark.parametrize(
    ("ids", "digest"),
    [([], DIGEST), (["a1,a2"], DIGEST), ([""], DIGEST), (["a1"], "pat@example.org"), (["a1"], "")],
)
def test_a_visit_link_refuses_payloads_that_are_not_ids(
    settings: Settings, clock: FakeClock, ids: list[str], digest: str
) -> None:
    with pytest.raises(ValueError, match=r"appointment id|blind index"):
        visit_link(
            settings,
            Keyring.generate(),
            appointment_ids=ids,
            contact_digest=digest,
            now=clock.now(),
        )
