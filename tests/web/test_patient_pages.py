"""The pages a patient reaches from an e-mail reminder, as the patient and mail clients see them."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr
from sqlalchemy import func, select
from tests.ehr.builders import appointment

from clinicflow.channels.consent import ConsentSource, is_opted_out
from clinicflow.channels.inbound import INBOUND_RECEIVED
from clinicflow.channels.link_secret import unsubscribe_link, visit_link
from clinicflow.clock import FakeClock
from clinicflow.ehr import Ingestor
from clinicflow.engine.payloads import MessageChannel
from clinicflow.security.audit import Actor
from clinicflow.security.phi import Keyring, PhiCipher
from clinicflow.settings import Settings
from clinicflow.store import Database
from clinicflow.store.audit import audit_log
from clinicflow.store.engine import Event
from clinicflow.store.messaging import ConsentChange, InboundMessage
from clinicflow.store.replica import Appointment
from clinicflow.web import create_app
from clinicflow.web.patient_pages import VisitState, visit_state

PRACTICE = "Riverside Family Practice"
ADDRESS = "pat.rivera@example.org"
REASON = "Follow-up for depression"
# Tuesday 1 December 2026, 10:30 in New York; the clock fixture reads Monday 23 November.
UPCOMING = datetime(2026, 12, 1, 15, 10, tzinfo=UTC)  # appointment(1, ...) starts 20 min later
LAST_WEEK = datetime(2026, 11, 16, 15, 0, tzinfo=UTC)


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def _settings(tmp_path: Path, ring: Keyring) -> Settings:
    """An install whose PHI keys are `ring`'s, given the way an operator sets them."""
    previous = ",".join(_b64(key) for key in ring.previous)
    return Settings(
        data_dir=tmp_path,
        timezone="America/New_York",
        public_url="https://clinic.example",
        email_from=f"{PRACTICE} <reminders@riverside.example>",
        phi_key=SecretStr(_b64(ring.active)),
        phi_index_key=SecretStr(_b64(ring.index_key)),
        phi_previous_keys=SecretStr(previous) if previous else None,
    )


def _visit(n: int, first_start: datetime, **kwargs: str) -> dict[str, object]:
    """Appointment a{n} with Dr. Ana Ortiz at the Main Street clinic, for a stated reason."""
    resource = appointment(n, first_start, **kwargs)
    resource["participant"] = [
        *resource["participant"],  # type: ignore[misc]  # a list, as the builder makes it
        {"actor": {"reference": "Practitioner/dr1"}, "status": "accepted"},
        {"actor": {"reference": "Location/loc1"}, "status": "accepted"},
    ]
    resource["reasonCode"] = [{"text": REASON}]
    resource["description"] = REASON
    return resource


SCHEDULE: list[dict[str, object]] = [
    {
        "resourceType": "Practitioner",
        "id": "dr1",
        "name": [{"prefix": ["Dr."], "given": ["Ana"], "family": "Ortiz"}],
    },
    {"resourceType": "Location", "id": "loc1", "name": "Riverside Clinic, 12 Main Street"},
    _visit(1, UPCOMING),  # open
    _visit(2, UPCOMING, status="cancelled"),
    _visit(3, LAST_WEEK),  # past
    _visit(4, UPCOMING, participant_status="accepted"),  # the patient already confirmed
]


def _ingest(db: Database, cipher: PhiCipher, clock: FakeClock) -> None:
    ingestor = Ingestor(db, cipher, clock, source="folder", actor=Actor.system("test-setup"))
    for number, resource in enumerate(SCHEDULE):
        batch = ingestor.builder.add(resource, where=f"resource {number}")
        if batch:
            ingestor.write(batch)
    report = ingestor.finish()
    assert not report.rejected
    assert report.created == len(SCHEDULE)


@pytest.fixture
def ring() -> Keyring:
    return Keyring.generate()


def _client(db: Database, clock: FakeClock, settings: Settings) -> TestClient:
    return TestClient(create_app(settings, db=db, clock=clock))


@pytest.fixture
def client(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path, ring: Keyring
) -> Iterator[TestClient]:
    """The app on SQLite over a replica holding the schedule above."""
    _ingest(sqlite_db, PhiCipher(ring), clock)
    with _client(sqlite_db, clock, _settings(tmp_path, ring)) as test_client:
        yield test_client


def _digest(ring: Keyring) -> str:
    return PhiCipher(ring).blind_index("email", ADDRESS)


def _visit_path(tmp_path: Path, ring: Keyring, clock: FakeClock, *ids: str) -> str:
    link = visit_link(
        _settings(tmp_path, ring),
        ring,
        appointment_ids=ids,
        contact_digest=_digest(ring),
        now=clock.now(),
    )
    assert link.startswith("https://clinic.example/visit/")
    return urlsplit(link).path


def _unsubscribe_path(tmp_path: Path, ring: Keyring, clock: FakeClock) -> str:
    link = unsubscribe_link(
        _settings(tmp_path, ring), ring, contact_digest=_digest(ring), now=clock.now()
    )
    return urlsplit(link).path


def _text(response: Response) -> str:
    """The page's words as a person reads them, tags removed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def _buttons(response: Response) -> list[str]:
    return re.findall(r'<button[^>]*value="(\w+)"', response.text)


def _count(db: Database, model: type[object]) -> int:
    with db.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_good_link_shows_when_with_whom_and_where_but_never_why(
    client: TestClient, sqlite_db: Database, tmp_path: Path, ring: Keyring, clock: FakeClock
) -> None:
    response = client.get(_visit_path(tmp_path, ring, clock, "a1"))
    assert response.status_code == 200
    text = _text(response)
    assert "Tuesday 1 December 2026, 10:30 AM" in text
    assert "With Dr. Ana Ortiz" in text
    assert "At Riverside Clinic, 12 Main Street" in text
    assert "Please confirm or cancel." in text
    assert "depression" not in response.text
    assert _buttons(response) == ["confirm", "cancel"]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert 'name="viewport"' in response.text
    assert "<script" not in response.text
    assert client.get("/static/patient.css").status_code == 200
    assert "<style" not in response.text
    assert "style=" not in response.text
    with sqlite_db.transaction() as session:
        read = session.execute(
            select(audit_log.c.actor, audit_log.c.resources).where(audit_log.c.action == "read")
        ).all()
    assert [(row.actor, row.resources) for row in read] == [("patient-link", ["Appointment/a1"])]


def test_cancelled_and_past_visits_say_so_and_offer_no_buttons(
    client: TestClient, tmp_path: Path, ring: Keyring, clock: FakeClock
) -> None:
    response = client.get(_visit_path(tmp_path, ring, clock, "a2", "a3", "a404"))
    assert response.status_code == 200
    text = _text(response)
    assert "This visit is already cancelled." in text
    assert "This visit has passed." in text
    assert "This visit is no longer in our schedule." in text
    assert "<form" not in response.text
    assert _buttons(response) == []


def test_an_already_confirmed_visit_can_still_be_cancelled_but_not_confirmed_again(
    client: TestClient, tmp_path: Path, ring: Keyring, clock: FakeClock
) -> None:
    response = client.get(_visit_path(tmp_path, ring, clock, "a4", "a2"))
    assert "Already confirmed." in _text(response)
    assert _buttons(response) == ["cancel"]


def test_an_expired_link_tells_the_patient_to_call_the_practice(
    client: TestClient, sqlite_db: Database, tmp_path: Path, ring: Keyring, clock: FakeClock
) -> None:
    path = _visit_path(tmp_path, ring, clock, "a1")
    clock.advance(timedelta(days=31))
    for response in (client.get(path), client.post(path, data={"action": "confirm"})):
        assert response.status_code == 410
        assert "This link has expired" in _text(response)
        assert f"Please call {PRACTICE}." in _text(response)
        assert "Traceback" not in response.text
        assert "Ortiz" not in response.text
    assert _count(sqlite_db, InboundMessage) == 0


@pytest.mark.parametrize("how", ["cut short", "another practice's key", "an unsubscribe link"])
def test_a_forged_cut_or_wrong_purpose_link_is_refused_with_the_friendly_page(
    client: TestClient, tmp_path: Path, ring: Keyring, clock: FakeClock, how: str
) -> None:
    if how == "cut short":
        path = _visit_path(tmp_path, ring, clock, "a1")[:-4]
    elif how == "another practice's key":
        path = _visit_path(tmp_path, Keyring.generate(), clock, "a1")
    else:
        path = _unsubscribe_path(tmp_path, ring, clock).replace("/unsubscribe/", "/visit/")
    response = client.get(path)
    assert response.status_code == 404
    assert "This link does not work" in _text(response)
    assert f"Please call {PRACTICE}." in _text(response)
    assert "Ortiz" not in response.text
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(("action", "intent"), [("confirm", "confirm"), ("cancel", "cancel")])
def test_an_answer_is_stored_once_as_an_inbound_message_for_the_visits_however_often_clicked(
    db: Database, clock: FakeClock, tmp_path: Path, ring: Keyring, action: str, intent: str
) -> None:
    _ingest(db, PhiCipher(ring), clock)
    path = _visit_path(tmp_path, ring, clock, "a1", "a4")
    with _client(db, clock, _settings(tmp_path, ring)) as client:
        first = client.post(path, data={"action": action})
        second = client.post(path, data={"action": action})
    for response in (first, second):
        assert response.status_code == 200
        assert "Thank you: we have your answer" in _text(response)
        assert f"You asked to {action} your visits." in _text(response)
        assert response.headers["Cache-Control"] == "no-store"
    with db.transaction() as session:
        stored = session.scalars(select(InboundMessage)).all()
        events = session.scalars(select(Event).where(Event.type == INBOUND_RECEIVED)).all()
        statuses = {
            row.fhir_id: row.status
            for row in session.execute(select(Appointment.fhir_id, Appointment.status))
        }
    assert len(stored) == 1
    assert stored[0].intent == intent
    assert stored[0].appointment_ids == ["a1", "a4"]
    assert stored[0].channel == "email"
    assert stored[0].contact_digest == _digest(ring)
    assert stored[0].provider_id.startswith("link:")
    assert len(events) == 1
    # The page only passes the answer on; the reply automation changes the visit.
    assert statuses["a1"] == "booked"


def test_confirm_then_cancel_stores_both_answers_in_order(
    client: TestClient, sqlite_db: Database, tmp_path: Path, ring: Keyring, clock: FakeClock
) -> None:
    path = _visit_path(tmp_path, ring, clock, "a1")
    client.post(path, data={"action": "confirm"})
    clock.advance(timedelta(minutes=2))
    client.post(path, data={"action": "cancel"})
    with sqlite_db.transaction() as session:
        intents = session.scalars(select(InboundMessage.intent).order_by(InboundMessage.id)).all()
    assert intents == ["confirm", "cancel"]


@pytest.mark.parametrize("form", [{"action": "delete"}, {}])
def test_an_unknown_or_missing_action_is_refused_with_400_and_stores_nothing(
    client: TestClient,
    sqlite_db: Database,
    tmp_path: Path,
    ring: Keyring,
    clock: FakeClock,
    form: dict[str, str],
) -> None:
    response = client.post(_visit_path(tmp_path, ring, clock, "a1"), data=form)
    assert response.status_code == 400
    assert "Please go back and press Confirm or Cancel." in _text(response)
    assert _count(sqlite_db, InboundMessage) == 0


def test_opening_the_unsubscribe_page_changes_nothing_and_its_button_opts_out(
    client: TestClient, sqlite_db: Database, tmp_path: Path, ring: Keyring, clock: FakeClock
) -> None:
    path = _unsubscribe_path(tmp_path, ring, clock)
    page = client.get(path)
    assert page.status_code == 200
    assert "Stop e-mail from us?" in _text(page)
    assert '<form method="post"' in page.text
    assert _count(sqlite_db, ConsentChange) == 0

    done = client.post(path)
    assert done.status_code == 200
    assert "You are unsubscribed" in _text(done)
    with sqlite_db.transaction() as session:
        assert is_opted_out(session, MessageChannel.EMAIL, _digest(ring))
        assert not is_opted_out(session, MessageChannel.SMS, _digest(ring))
        change = session.scalars(select(ConsentChange)).one()
    assert (change.keyword, change.source) == ("unsubscribe link", ConsentSource.EMAIL_LINK.value)

    again = client.get(path)
    assert "You are already unsubscribed" in _text(again)
    assert "<form" not in again.text


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_a_mail_clients_one_click_post_unsubscribes_without_cookies_or_redirects(
    client: TestClient,
    sqlite_db: Database,
    tmp_path: Path,
    ring: Keyring,
    clock: FakeClock,
    encoding: str,
) -> None:
    path = _unsubscribe_path(tmp_path, ring, clock)
    client.cookies.clear()
    if encoding == "urlencoded":
        response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    else:
        response = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert response.status_code == 200
    assert not response.history  # answered directly: RFC 8058 forbids a redirect
    with sqlite_db.transaction() as session:
        assert is_opted_out(session, MessageChannel.EMAIL, _digest(ring))


def test_a_forged_unsubscribe_link_records_nothing(
    client: TestClient, sqlite_db: Database, tmp_path: Path, clock: FakeClock
) -> None:
    response = client.post(_unsubscribe_path(tmp_path, Keyring.generate(), clock))
    assert response.status_code == 404
    assert _count(sqlite_db, ConsentChange) == 0


def test_a_link_mailed_before_a_phi_key_rotation_still_opens_after_it(
    sqlite_db: Database, clock: FakeClock, tmp_path: Path, ring: Keyring
) -> None:
    _ingest(sqlite_db, PhiCipher(ring), clock)
    path = _visit_path(tmp_path, ring, clock, "a1")
    # The rotation: a new active key, the old one kept until its ciphertexts are re-encrypted.
    rotated = Keyring(
        active=Keyring.generate().active, index_key=ring.index_key, previous=[ring.active]
    )
    clock.advance(timedelta(days=1))
    with _client(sqlite_db, clock, _settings(tmp_path, rotated)) as client:
        response = client.get(path)
        answer = client.post(path, data={"action": "confirm"})
    assert response.status_code == 200
    assert "With Dr. Ana Ortiz" in _text(response)
    assert answer.status_code == 200
    assert _count(sqlite_db, InboundMessage) == 1


@pytest.mark.parametrize(
    ("status", "patient_status", "start_at", "expected"),
    [
        ("booked", "needs-action", UPCOMING, VisitState.OPEN),
        ("pending", None, UPCOMING, VisitState.OPEN),
        ("booked", "accepted", UPCOMING, VisitState.CONFIRMED),
        ("cancelled", "accepted", UPCOMING, VisitState.CANCELLED),
        ("cancelled", None, None, VisitState.CANCELLED),
        ("booked", "accepted", LAST_WEEK, VisitState.PAST),
        ("noshow", None, UPCOMING, VisitState.PAST),
        ("waitlist", None, None, VisitState.GONE),
        (None, None, None, VisitState.GONE),
    ],
)
def test_a_visits_state_is_read_from_its_status_participant_and_start(
    clock: FakeClock,
    status: str | None,
    patient_status: str | None,
    start_at: datetime | None,
    expected: VisitState,
) -> None:
    assert visit_state(status, patient_status, start_at, clock.now()) == expected


def test_a_visit_starting_now_is_past_and_one_a_second_later_is_not(clock: FakeClock) -> None:
    now = clock.now()
    assert visit_state("booked", None, now, now) is VisitState.PAST
    assert visit_state("booked", None, now + timedelta(seconds=1), now) is VisitState.OPEN
