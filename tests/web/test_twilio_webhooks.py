"""Twilio's webhooks as Twilio posts them: signed, sometimes twice, sometimes out of order."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update
from tests.fhir_peer.server import serving
from tests.twilio_peer import TwilioPeer, running_peer, twilio_signature
from twilio.request_validator import RequestValidator

from clinicflow.channels.consent import is_opted_out
from clinicflow.channels.sms_webhook import INBOUND_PATH, STATUS_PATH, callback_key_tag
from clinicflow.channels.twilio_sms import RateLimiter, TwilioSms
from clinicflow.clock import FakeClock
from clinicflow.engine.effects import record_effect
from clinicflow.engine.keys import work_item_key
from clinicflow.engine.payloads import MESSAGE_SEND, MessageChannel, OutgoingMessage
from clinicflow.engine.runs import create_run
from clinicflow.engine.states import RunId, TriggerKind
from clinicflow.security.phi import PhiCipher, keyring_from_settings
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import audit_log
from clinicflow.store.engine import Effect, Event, WorkItem, work_item_description_aad
from clinicflow.store.messaging import ConsentChange, InboundMessage
from clinicflow.web import create_app
from clinicflow.web.twilio_webhooks import next_delivery_status

SID = "AC" + "0" * 32
TOKEN = "webhook-test-token"
OTHER_TOKEN = "someone-elses-token"
PUBLIC_URL = "https://clinic.example.org"  # behind a proxy: not the URL the app sees
PRACTICE = "+15550001111"
PATIENT = "+15557654321"
SMS = MessageChannel.SMS


def _settings(tmp_path: Path, *, token: str | None = TOKEN) -> Settings:
    return Settings(
        data_dir=tmp_path,
        public_url=PUBLIC_URL,
        twilio_auth_token=SecretStr(token) if token else None,
        timezone="America/New_York",
        practice_name="Lakeside Family Medicine",
    )


@pytest.fixture
def app(db: Database, clock: FakeClock, tmp_path: Path) -> FastAPI:
    """The web app over the `db` fixture: once on SQLite, once on PostgreSQL."""
    return create_app(_settings(tmp_path), db=db, clock=clock)


@pytest.fixture
def client(app: FastAPI, cipher: PhiCipher) -> Iterator[TestClient]:
    """A client of the app, on an install whose PHI key exists (`cipher`)."""
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def cipher(tmp_path: Path) -> PhiCipher:
    """The install's cipher: its key file, created in the test's data dir as an install does."""
    return PhiCipher(keyring_from_settings(_settings(tmp_path)))


def _inbound(body: str, sid: str = "SM" + "a" * 32, from_: str = PATIENT) -> dict[str, str]:
    return {
        "AccountSid": SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": from_,
        "MessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "To": PRACTICE,
    }


def _post(
    client: TestClient,
    path: str,
    params: dict[str, str],
    *,
    token: str = TOKEN,
    signed_for: str = PUBLIC_URL,
) -> httpx.Response:
    """POST as Twilio does, signed by twilio's own RequestValidator over `signed_for` + path."""
    signature = RequestValidator(token).compute_signature(signed_for + path, params)
    return client.post(path, data=params, headers={"X-Twilio-Signature": signature})


def _count(db: Database, table: Any) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _message_text(response_text: str) -> list[str]:
    root = ET.fromstring(response_text)  # noqa: S314 - our own app's answer
    assert root.tag == "Response"
    return [node.text or "" for node in root.iter("Message")]


# --- inbound texts -------------------------------------------------------------------------


def test_a_signed_text_is_stored_once_even_when_twilio_posts_it_twice(
    client: TestClient, db: Database, cipher: PhiCipher
) -> None:
    for _ in range(2):
        response = _post(client, INBOUND_PATH, _inbound("C"))
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/xml")
        assert _message_text(response.text) == []

    assert _count(db, InboundMessage) == 1
    assert _count(db, Event) == 1
    with db.transaction() as session:
        row = session.scalars(select(InboundMessage)).one()
    assert (row.intent, row.contact_digest) == ("confirm", cipher.blind_index("phone", PATIENT))


@pytest.mark.parametrize(
    "how",
    ["unsigned", "wrong token", "tampered body", "signed for the app's own URL", "other path"],
)
def test_a_text_not_signed_by_twilio_for_our_public_url_is_refused_and_nothing_is_stored(
    client: TestClient, db: Database, how: str
) -> None:
    params = _inbound("C")
    if how == "unsigned":
        response = client.post(INBOUND_PATH, data=params)
    elif how == "wrong token":
        response = _post(client, INBOUND_PATH, params, token=OTHER_TOKEN)
    elif how == "tampered body":
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + INBOUND_PATH, params)
        response = client.post(
            INBOUND_PATH,
            data={**params, "Body": "STOP"},
            headers={"X-Twilio-Signature": signature},
        )
    elif how == "signed for the app's own URL":
        response = _post(client, INBOUND_PATH, params, signed_for="http://testserver")
    else:
        signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + STATUS_PATH, params)
        response = client.post(INBOUND_PATH, data=params, headers={"X-Twilio-Signature": signature})

    assert response.status_code == 403
    assert "not signed by Twilio" in response.text
    for table in (InboundMessage, Event, ConsentChange, audit_log):
        assert _count(db, table) == 0


def test_without_an_auth_token_webhooks_answer_503_naming_the_setting(
    db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    app = create_app(_settings(tmp_path, token=None), db=db, clock=clock)
    with TestClient(app) as client:
        response = _post(client, INBOUND_PATH, _inbound("C"))

    assert response.status_code == 503
    assert "CLINICFLOW_TWILIO_AUTH_TOKEN" in response.text
    assert _count(db, InboundMessage) == 0


def test_without_a_phi_key_a_text_is_answered_503_and_nothing_is_stored(
    app: FastAPI, db: Database
) -> None:
    with TestClient(app) as client:
        response = _post(client, INBOUND_PATH, _inbound("C"))

    assert response.status_code == 503
    assert "encryption key" in response.text
    assert _count(db, InboundMessage) == 0


def test_a_signed_text_missing_a_field_is_a_400_naming_the_field(
    client: TestClient, db: Database
) -> None:
    params = _inbound("C")
    del params["From"]

    response = _post(client, INBOUND_PATH, params)

    assert response.status_code == 400
    assert "`From` is missing" in response.text
    assert _count(db, InboundMessage) == 0


def test_help_is_answered_with_a_message_saying_who_we_are_and_how_to_stop(
    client: TestClient,
) -> None:
    response = _post(client, INBOUND_PATH, _inbound("help"))

    assert response.status_code == 200
    [text] = _message_text(response.text)
    assert text.startswith("Lakeside Family Medicine: appointment reminders.")
    assert "Reply STOP to stop" in text


def test_ayuda_is_answered_in_spanish(client: TestClient) -> None:
    response = _post(client, INBOUND_PATH, _inbound("Ayuda"))

    [text] = _message_text(response.text)
    assert "Responda STOP" in text


def test_stop_opts_the_number_out_with_the_text_as_evidence_and_start_opts_it_back_in(
    client: TestClient, db: Database, cipher: PhiCipher
) -> None:
    digest = cipher.blind_index("phone", PATIENT)

    stop = _post(client, INBOUND_PATH, _inbound("Stop", sid="SM" + "1" * 32))
    assert _message_text(stop.text) == []  # Twilio confirms STOP
    with db.transaction() as session:
        assert is_opted_out(session, SMS, digest)
        change = session.scalars(select(ConsentChange)).one()
        message_id = session.scalars(select(InboundMessage.id)).one()
    assert (change.keyword, change.source, change.inbound_message_id) == ("STOP", "sms", message_id)

    _post(client, INBOUND_PATH, _inbound("START", sid="SM" + "2" * 32))
    with db.transaction() as session:
        assert not is_opted_out(session, SMS, digest)


def test_when_the_database_is_down_a_text_is_answered_503_so_twilio_does_not_drop_it(
    clock: FakeClock, tmp_path: Path
) -> None:
    keyring_from_settings(_settings(tmp_path))  # the install's key exists; the database is down
    # Nothing listens on port 1: every connection is refused at once.
    down = Database.from_url("postgresql+psycopg://postgres@127.0.0.1:1/clinicflow")
    try:
        with TestClient(create_app(_settings(tmp_path), db=down, clock=clock)) as client:
            response = _post(client, INBOUND_PATH, _inbound("C"))
    finally:
        down.dispose()

    assert response.status_code == 503
    assert "not stored" in response.text


# --- status callbacks ----------------------------------------------------------------------


def _sent_effect(
    db: Database,
    cipher: PhiCipher,
    clock: FakeClock,
    *,
    sid: str,
    key: str = "reminder:Appointment/9:sms-2d",
    reaches_patient: bool = True,
) -> Effect:
    """A `message.send` effect that went out through Twilio as message `sid`."""
    message = OutgoingMessage(SMS, PATIENT, "Reminder", for_ref="Patient/p1", focus="Appointment/9")
    with db.transaction() as session:
        run_id = create_run(
            session,
            automation="appointment-reminders",
            trigger_kind=TriggerKind.MANUAL,
            trigger_key=f"manual:{sid}",
            scheduled_for=clock.now(),
            requested_by="test",
            now=clock.now(),
        )
        recorded = record_effect(
            session,
            cipher,
            run_id=RunId(run_id or 0),
            automation="appointment-reminders",
            kind=MESSAGE_SEND,
            key=key,
            payload=message.to_payload(),
            summary="Reminder for J. Rivera (Tue 10:30)",
            reaches_patient=reaches_patient,
            dry_run=False,
            now=clock.now(),
            focus="Appointment/9",
        )
        session.execute(
            update(Effect)
            .where(Effect.id == recorded.id)
            .values(state="done", provider_ref=sid, finished_at=clock.now())
        )
        return session.get_one(Effect, recorded.id)


def _status(sid: str, status: str, error_code: int | None = None) -> dict[str, str]:
    params = {
        "AccountSid": SID,
        "From": PRACTICE,
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": PATIENT,
    }
    if error_code is not None:
        params["ErrorCode"] = str(error_code)
    return params


def _status_path(effect: Effect) -> str:
    return f"{STATUS_PATH}?k={callback_key_tag(effect.key)}"


def _effect(db: Database, effect_id: int) -> Effect:
    with db.transaction() as session:
        return session.get_one(Effect, effect_id)


def test_a_status_callback_sets_the_delivery_status_of_the_effect_that_sent_it(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    effect = _sent_effect(db, cipher, clock, sid="SM" + "5" * 32)

    response = _post(client, _status_path(effect), _status("SM" + "5" * 32, "delivered"))

    assert response.status_code == 200
    assert _effect(db, effect.id).delivery_status == "delivered"
    assert _count(db, WorkItem) == 0


def test_a_final_failure_opens_one_front_desk_work_item_even_when_posted_twice(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    sid = "SM" + "6" * 32
    effect = _sent_effect(db, cipher, clock, sid=sid)

    for _ in range(2):
        response = _post(client, _status_path(effect), _status(sid, "undelivered", 30003))
        assert response.status_code == 200

    assert _effect(db, effect.id).delivery_status == "undelivered"
    key = work_item_key("engine", "sms-undelivered", f"Effect/{effect.id}")
    with db.transaction() as session:
        item = session.scalars(select(WorkItem)).one()
    assert (item.key, item.pool, item.status) == (key, "front-desk", "requested")
    assert (item.focus, item.for_ref, item.source_effect_key) == (
        "Appointment/9",
        "Patient/p1",
        effect.key,
    )
    description = cipher.decrypt(item.description_enc, work_item_description_aad(key)).decode()
    assert description.startswith("Reminder for J. Rivera (Tue 10:30): the text could not be")
    assert "Twilio error 30003" in description
    assert _count(db, ConsentChange) == 0


def test_a_message_to_staff_that_fails_opens_no_patient_work_item(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    sid = "SM" + "7" * 32
    effect = _sent_effect(db, cipher, clock, sid=sid, reaches_patient=False)

    _post(client, _status_path(effect), _status(sid, "failed", 30005))

    assert _effect(db, effect.id).delivery_status == "failed"
    assert _count(db, WorkItem) == 0


def test_error_21610_also_records_the_numbers_opt_out_reported_by_twilio(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    sid = "SM" + "8" * 32
    effect = _sent_effect(db, cipher, clock, sid=sid)

    for _ in range(2):
        _post(client, _status_path(effect), _status(sid, "failed", 21610))

    with db.transaction() as session:
        assert is_opted_out(session, SMS, cipher.blind_index("phone", PATIENT))
        change = session.scalars(select(ConsentChange)).one()
    assert (change.source, change.inbound_message_id) == ("provider", None)


def test_error_21610_reported_after_the_patient_texted_start_leaves_them_opted_in(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    sid = "SM" + "9" * 32
    effect = _sent_effect(db, cipher, clock, sid=sid)
    clock.advance(timedelta(minutes=1))
    _post(client, INBOUND_PATH, _inbound("START", sid="SM" + "b" * 32))
    clock.advance(timedelta(minutes=1))

    _post(client, _status_path(effect), _status(sid, "failed", 21610))

    with db.transaction() as session:
        assert not is_opted_out(session, SMS, cipher.blind_index("phone", PATIENT))
    assert _count(db, WorkItem) == 1


def test_a_callback_for_a_message_we_do_not_know_is_answered_200_and_changes_nothing(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    effect = _sent_effect(db, cipher, clock, sid="SM" + "c" * 32)

    response = _post(client, _status_path(effect), _status("SM" + "d" * 32, "failed", 30003))

    assert response.status_code == 200
    assert _effect(db, effect.id).delivery_status is None
    assert _count(db, WorkItem) == 0


def test_a_callback_whose_tag_names_another_effect_changes_nothing(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    sid = "SM" + "e" * 32
    effect = _sent_effect(db, cipher, clock, sid=sid)
    path = f"{STATUS_PATH}?k={callback_key_tag('reminder:Appointment/other:sms-2d')}"

    assert _post(client, path, _status(sid, "failed", 30003)).status_code == 200

    assert _effect(db, effect.id).delivery_status is None
    assert _count(db, WorkItem) == 0


def test_a_status_callback_signed_without_its_query_is_refused(
    client: TestClient, db: Database, cipher: PhiCipher, clock: FakeClock
) -> None:
    sid = "SM" + "f" * 32
    effect = _sent_effect(db, cipher, clock, sid=sid)
    params = _status(sid, "delivered")
    signature = RequestValidator(TOKEN).compute_signature(PUBLIC_URL + STATUS_PATH, params)

    response = client.post(
        _status_path(effect), data=params, headers={"X-Twilio-Signature": signature}
    )

    assert response.status_code == 403
    assert _effect(db, effect.id).delivery_status is None


@pytest.mark.parametrize(
    ("current", "reported", "stored"),
    [
        (None, "sent", "sent"),
        ("sent", "delivered", "delivered"),
        ("delivered", "delivered", None),  # a repeat
        ("delivered", "sent", None),  # "sent" arrived late
        ("undelivered", "queued", None),
        ("delivered", "read", "read"),
    ],
)
def test_a_final_status_is_never_replaced_by_an_earlier_one(
    current: str | None, reported: str, stored: str | None
) -> None:
    assert next_delivery_status(current, reported) == stored


# --- the whole way round, over HTTP on loopback ---------------------------------------------


def test_twilios_signed_posts_reach_the_served_app_through_its_public_url(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path
) -> None:
    """The peer plays Twilio: it signs and posts to the URL it was given, as Twilio does."""
    peer = TwilioPeer(SID, TOKEN, {PRACTICE})
    app = create_app(_settings(tmp_path), db=sqlite_db, clock=clock)
    cipher = PhiCipher(keyring_from_settings(_settings(tmp_path)))
    with serving(app, name="clinicflow") as app_url, running_peer(peer) as api_url:
        app.state.clinicflow.settings = _settings(tmp_path).model_copy(
            update={"public_url": app_url}
        )
        effect_key = "reminder:Appointment/9:sms-2h"
        sms = TwilioSms(
            SID,
            TOKEN,
            PRACTICE,
            public_url=app_url,
            api_url=api_url,
            limiter=RateLimiter(1000.0, clock, lambda _s: None),
        )
        sent = sms.send(PATIENT, "Reminder", key=effect_key)
        effect = _sent_effect(sqlite_db, cipher, clock, sid=sent.sid, key=effect_key)

        assert peer.post_status(sent.sid, "delivered").status_code == 200
        reply = peer.send_inbound(f"{app_url}{INBOUND_PATH}", PATIENT, "Sí")
        assert reply.status_code == 200
        forged = {"From": PATIENT, "To": PRACTICE, "Body": "X", "MessageSid": "SM" + "0" * 32}
        signature = twilio_signature(f"{app_url}{INBOUND_PATH}", forged, "not-the-token")
        forged_response = httpx.post(
            f"{app_url}{INBOUND_PATH}", data=forged, headers={"X-Twilio-Signature": signature}
        )

    assert forged_response.status_code == 403
    assert _effect(sqlite_db, effect.id).delivery_status == "delivered"
    with sqlite_db.transaction() as session:
        assert session.scalars(select(InboundMessage.intent)).one() == "confirm"
