"""Replica bodies: compressed with the shipped dictionary, encrypted, and readable back."""

from __future__ import annotations

import orjson
import pytest

from clinicflow.errors import SecurityError
from clinicflow.store import bodies
from clinicflow.store.bodies import body_aad, open_body, seal_body

APPOINTMENT = {
    "resourceType": "Appointment",
    "id": "a1",
    "status": "booked",
    "serviceType": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/service-type",
                    "code": "124",
                    "display": "General Practice",
                }
            ]
        }
    ],
    "start": "2026-11-24T09:00:00-05:00",
    "end": "2026-11-24T09:20:00-05:00",
    "participant": [
        {"actor": {"reference": "Patient/p1"}, "status": "accepted"},
        {"actor": {"reference": "Practitioner/d1"}, "status": "accepted"},
    ],
}
CANONICAL = orjson.dumps(APPOINTMENT, option=orjson.OPT_SORT_KEYS)


def test_a_sealed_body_opens_to_the_same_resource(cipher):
    sealed = seal_body(cipher, CANONICAL, "Appointment", "a1")
    assert open_body(cipher, sealed, "Appointment", "a1") == APPOINTMENT


def test_the_dictionary_shrinks_a_typical_body_to_a_fraction(cipher):
    plaintext = cipher.decrypt(seal_body(cipher, CANONICAL, "Appointment", "a1"), b"Appointment/a1")
    assert plaintext[:2] == b"Z\x01"  # compressed, with dictionary 1
    assert len(plaintext) < len(CANONICAL) * 0.5


def test_bodies_written_before_compression_still_open(cipher):
    legacy = cipher.encrypt(CANONICAL, body_aad("Appointment", "a1"))
    assert open_body(cipher, legacy, "Appointment", "a1") == APPOINTMENT


def test_a_body_moved_to_another_row_does_not_open(cipher):
    sealed = seal_body(cipher, CANONICAL, "Appointment", "a1")
    with pytest.raises(SecurityError, match="integrity"):
        open_body(cipher, sealed, "Appointment", "a2")


def test_a_body_naming_an_unknown_dictionary_says_to_upgrade(cipher):
    plaintext = b"Z\x09" + b"\x00" * 8
    sealed = cipher.encrypt(plaintext, body_aad("Appointment", "a1"))
    with pytest.raises(SecurityError, match=r"dictionary 9.*upgrade"):
        open_body(cipher, sealed, "Appointment", "a1")


def test_a_changed_dictionary_file_is_refused(monkeypatch):
    name, _digest = bodies.DICTIONARIES[1]
    monkeypatch.setitem(bodies.DICTIONARIES, 1, (name, "0" * 64))
    bodies._dictionary.cache_clear()
    try:
        with pytest.raises(SecurityError, match="not the one shipped"):
            bodies._dictionary(1)
    finally:
        bodies._dictionary.cache_clear()
