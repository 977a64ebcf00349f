"""The Twilio SMS channel, with the real `twilio` library talking to a Twilio peer on loopback."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr
from tests.twilio_peer import Fault, PeerSwitch, StoredMessage, TwilioPeer, running_switch

from clinicflow.channels.sms_webhook import (
    INBOUND_PATH,
    KEY_TAG_PARAM,
    STATUS_PATH,
    callback_key_tag,
    parse_inbound,
    parse_status,
    verify_signature,
)
from clinicflow.channels.twilio_sms import RateLimiter, SentSms, SmsError, TwilioSms
from clinicflow.clock import FakeClock, SystemClock
from clinicflow.engine.handlers import OutcomeUnknownError
from clinicflow.errors import ConfigError, InputError
from clinicflow.settings import Settings

SID = "AC" + "0" * 32
TOKEN = "peer-auth-token"
PRACTICE = "+15550001111"
SERVICE = "MG" + "1" * 32
PATIENT = "+15557654321"
KEY = "reminder:appt-1:24h"
BODY = "Reminder: your visit with Dr. Lee is Tue 10:30. Reply C to confirm."


class Sleeps:
    """A sleep that records what it was asked and moves a FakeClock instead of waiting."""

    def __init__(self, clock: FakeClock | None = None) -> None:
        self.clock = clock
        self.calls: list[float] = []
        self._lock = threading.Lock()

    def __call__(self, seconds: float) -> None:
        with self._lock:
            self.calls.append(seconds)
        if self.clock is not None:
            self.clock.advance(timedelta(seconds=seconds))


@pytest.fixture(scope="module")
def switch() -> Iterator[PeerSwitch]:
    with running_switch() as switch:
        yield switch


@pytest.fixture
def peer(switch: PeerSwitch) -> TwilioPeer:
    """A fresh Twilio account for each test, served by the module's one server."""
    return switch.use(
        TwilioPeer(SID, TOKEN, {PRACTICE}, services={SERVICE}, unsubscribed={"+15550009999"})
    )


@pytest.fixture
def api_url(peer: TwilioPeer) -> str:
    return peer.base_url


def _limiter() -> RateLimiter:
    return RateLimiter(1000.0, FakeClock(datetime(2025, 1, 1, tzinfo=UTC)), Sleeps())


def _sms(
    api_url: str, *, sender: str = PRACTICE, token: str = TOKEN, timeout_s: float = 15.0
) -> TwilioSms:
    return TwilioSms(
        SID,
        token,
        sender,
        public_url=api_url,  # status callbacks land in the peer's webhook sink
        api_url=api_url,
        timeout_s=timeout_s,
        limiter=_limiter(),
    )


def _an_hour_ago() -> datetime:
    return SystemClock().now() - timedelta(hours=1)


def test_send_creates_exactly_one_message_with_our_sender_body_and_status_callback(
    peer: TwilioPeer, api_url: str
) -> None:
    sent = _sms(api_url).send(PATIENT, BODY, key=KEY)

    [stored] = peer.outgoing()
    assert sent == SentSms(stored.sid, "queued")
    assert sent.sid.startswith("SM")
    assert (stored.to, stored.from_, stored.body) == (PATIENT, PRACTICE, BODY)
    assert stored.status_callback == (
        f"{api_url}{STATUS_PATH}?{KEY_TAG_PARAM}={callback_key_tag(KEY)}"
    )


def test_a_messaging_service_sender_is_sent_as_messaging_service_sid(
    peer: TwilioPeer, api_url: str
) -> None:
    _sms(api_url, sender=SERVICE).send(PATIENT, BODY, key=KEY)

    [stored] = peer.outgoing()
    assert stored.messaging_service_sid == SERVICE


def test_a_wrong_auth_token_is_a_permanent_error_naming_the_settings(
    peer: TwilioPeer, api_url: str
) -> None:
    with pytest.raises(SmsError) as caught:
        _sms(api_url, token="not-the-token").send(PATIENT, BODY, key=KEY)

    assert caught.value.code == "sms.auth_failed"
    assert caught.value.retryable is False
    assert "CLINICFLOW_TWILIO_AUTH_TOKEN" in caught.value.message
    assert peer.outgoing() == []


def test_an_invalid_number_is_a_permanent_error_the_front_desk_can_act_on(
    peer: TwilioPeer, api_url: str
) -> None:
    with pytest.raises(SmsError) as caught:
        _sms(api_url).send("555-1234", BODY, key=KEY)

    assert (caught.value.code, caught.value.twilio_code) == ("sms.invalid_number", 21211)
    assert caught.value.retryable is False
    assert "not a valid phone number" in caught.value.message
    assert "correct it in the EHR" in caught.value.message
    assert peer.outgoing() == []


def test_a_recipient_who_replied_stop_is_a_permanent_error_asking_for_a_call(
    api_url: str,
) -> None:
    with pytest.raises(SmsError) as caught:
        _sms(api_url).send("+15550009999", BODY, key=KEY)

    assert caught.value.code == "sms.opted_out"
    assert caught.value.retryable is False
    assert "Please call" in caught.value.message


def test_a_throttled_send_is_retryable_and_the_retry_goes_through(
    peer: TwilioPeer, api_url: str
) -> None:
    peer.add_fault(Fault(status=429))
    sms = _sms(api_url)

    with pytest.raises(SmsError) as caught:
        sms.send(PATIENT, BODY, key=KEY)
    assert (caught.value.code, caught.value.retryable) == ("sms.throttled", True)
    assert peer.outgoing() == []

    sms.send(PATIENT, BODY, key=KEY)
    assert len(peer.outgoing()) == 1


def test_twilio_unavailable_before_accepting_is_retryable(peer: TwilioPeer, api_url: str) -> None:
    peer.add_fault(Fault(status=503))

    with pytest.raises(SmsError) as caught:
        _sms(api_url).send(PATIENT, BODY, key=KEY)

    assert caught.value.retryable is True


@pytest.mark.parametrize(
    "fault",
    [
        # A gateway error: Twilio may have taken the message before the gateway gave up.
        Fault(status=502, accept=True),
        # A crash after Twilio accepted: the answer never arrived.
        Fault(drop_connection=True, accept=True),
    ],
    ids=["gateway-error", "dropped-after-accept"],
)
def test_an_accepted_message_whose_answer_is_lost_is_outcome_unknown_and_find_sent_finds_it(
    peer: TwilioPeer, api_url: str, fault: Fault
) -> None:
    peer.add_fault(fault)
    sms = _sms(api_url)
    since = _an_hour_ago()

    with pytest.raises(OutcomeUnknownError):
        sms.send(PATIENT, BODY, key=KEY)

    [stored] = peer.outgoing()
    assert sms.find_sent(KEY, PATIENT, since, body=BODY) == SentSms(stored.sid, "queued")


def test_a_crash_before_twilio_accepted_leaves_nothing_for_find_sent(
    peer: TwilioPeer, api_url: str
) -> None:
    peer.add_fault(Fault(drop_connection=True))
    sms = _sms(api_url)

    with pytest.raises(OutcomeUnknownError):
        sms.send(PATIENT, BODY, key=KEY)

    assert peer.outgoing() == []
    assert sms.find_sent(KEY, PATIENT, _an_hour_ago(), body=BODY) is None


def test_a_timeout_after_twilio_accepted_is_outcome_unknown(peer: TwilioPeer, api_url: str) -> None:
    peer.add_fault(Fault(delay_s=0.5, accept=True))

    with pytest.raises(OutcomeUnknownError):
        _sms(api_url, timeout_s=0.1).send(PATIENT, BODY, key=KEY)

    assert len(peer.outgoing()) == 1


def test_twilio_refusing_the_connection_is_retryable_because_nothing_was_sent() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    with pytest.raises(SmsError) as caught:
        _sms(closed_url).send(PATIENT, BODY, key=KEY)

    assert (caught.value.code, caught.value.retryable) == ("sms.unreachable_provider", True)


def test_find_sent_ignores_other_texts_other_numbers_and_texts_before_the_window(
    peer: TwilioPeer, api_url: str
) -> None:
    now = SystemClock().now()
    for to, body, created_at in [
        (PATIENT, "Some other reminder", now),
        ("+15551112222", BODY, now),
        (PATIENT, BODY, now - timedelta(days=2)),
    ]:
        peer.store(
            StoredMessage(
                f"SM{len(peer.messages):032d}", SID, to, PRACTICE, body, "outbound-api", created_at
            )
        )

    assert _sms(api_url).find_sent(KEY, PATIENT, now - timedelta(hours=1), body=BODY) is None


def test_find_sent_reads_past_the_first_page_of_a_busy_number(
    peer: TwilioPeer, api_url: str
) -> None:
    sms = _sms(api_url)
    since = _an_hour_ago()
    sms.send(PATIENT, BODY, key=KEY)
    for n in range(60):
        sms.send(PATIENT, f"Unrelated text {n}", key=f"other:{n}")

    found = sms.find_sent(KEY, PATIENT, since, body=BODY)

    assert found is not None
    assert found.sid == peer.outgoing()[0].sid
    assert ("GET", True) in {(method, "Page=1" in path) for method, path in peer.requests}


def test_a_status_callback_signed_by_twilio_verifies_and_names_its_effect(
    peer: TwilioPeer, api_url: str
) -> None:
    sent = _sms(api_url).send(PATIENT, BODY, key=KEY)

    assert peer.post_status(sent.sid, "undelivered", error_code=30003).status_code == 200

    [receipt] = peer.webhooks
    assert verify_signature(receipt.url, receipt.params, receipt.signature, TOKEN)
    tag = parse_qs(urlsplit(receipt.url).query)[KEY_TAG_PARAM][0]
    update = parse_status(receipt.params, key_tag=tag)
    assert (update.message_sid, update.status, update.error_code) == (
        sent.sid,
        "undelivered",
        30003,
    )
    assert update.key_tag == callback_key_tag(KEY)
    assert update.is_final


def test_a_tampered_or_unsigned_webhook_is_rejected(peer: TwilioPeer, api_url: str) -> None:
    peer.send_inbound(f"{api_url}{INBOUND_PATH}", PATIENT, "C")
    [receipt] = peer.webhooks

    tampered = {**receipt.params, "Body": "STOP"}
    assert not verify_signature(receipt.url, tampered, receipt.signature, TOKEN)
    assert not verify_signature(receipt.url + "?x=1", receipt.params, receipt.signature, TOKEN)
    assert not verify_signature(receipt.url, receipt.params, receipt.signature, "other-token")
    assert not verify_signature(receipt.url, receipt.params, None, TOKEN)


def test_an_inbound_text_parses_into_who_wrote_what(peer: TwilioPeer, api_url: str) -> None:
    peer.send_inbound(f"{api_url}{INBOUND_PATH}", PATIENT, "C")
    [receipt] = peer.webhooks
    received_at = datetime(2025, 3, 4, 15, 0, tzinfo=UTC)

    assert verify_signature(receipt.url, receipt.params, receipt.signature, TOKEN)
    inbound = parse_inbound(receipt.params, received_at=received_at)
    assert (inbound.from_, inbound.to, inbound.body) == (PATIENT, PRACTICE, "C")
    assert inbound.message_sid.startswith("SM")
    assert inbound.received_at == received_at


def test_a_webhook_without_a_required_field_names_the_field() -> None:
    with pytest.raises(InputError, match="`From` is missing"):
        parse_inbound(
            {"MessageSid": "SM1", "To": PRACTICE, "Body": "hi"}, received_at=_an_hour_ago()
        )
    with pytest.raises(InputError, match="`MessageStatus` is missing"):
        parse_status({"MessageSid": "SM1"})


def test_the_rate_limiter_spaces_sends_by_the_configured_rate() -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    sleeps = Sleeps(clock)
    limiter = RateLimiter(2.0, clock, sleeps)

    waits = [limiter.wait() for _ in range(3)]
    clock.advance(timedelta(seconds=10))
    after_idle = [limiter.wait() for _ in range(2)]

    assert waits == [0.0, 0.5, 0.5]
    assert after_idle == [0.0, 0.5]  # an idle minute does not save up a burst


def test_threads_sharing_a_rate_limiter_each_get_their_own_slot() -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    sleeps = Sleeps()  # the clock stands still: every thread asks at the same instant
    limiter = RateLimiter(4.0, clock, sleeps)

    threads = [threading.Thread(target=limiter.wait) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(sleeps.calls) == [0.25, 0.5, 0.75]


def test_each_send_waits_for_the_rate_limiter(peer: TwilioPeer, api_url: str) -> None:
    clock = FakeClock(datetime(2025, 1, 1, tzinfo=UTC))
    sleeps = Sleeps(clock)
    sms = TwilioSms(
        SID,
        TOKEN,
        PRACTICE,
        public_url=api_url,
        api_url=api_url,
        limiter=RateLimiter(1.0, clock, sleeps),
    )

    sms.send(PATIENT, BODY, key=KEY)
    sms.send(PATIENT, BODY + " (2)", key=KEY + ":2")

    assert sleeps.calls == [1.0]
    assert len(peer.outgoing()) == 2


def test_settings_without_a_sending_number_name_the_missing_variable() -> None:
    settings = Settings(twilio_account_sid=SID, twilio_auth_token=SecretStr(TOKEN))

    with pytest.raises(ConfigError, match="CLINICFLOW_TWILIO_FROM_NUMBER"):
        TwilioSms.from_settings(settings)


def test_settings_with_a_peer_url_send_through_the_peer(peer: TwilioPeer, api_url: str) -> None:
    settings = Settings(
        twilio_account_sid=SID,
        twilio_auth_token=SecretStr(TOKEN),
        twilio_from_number=PRACTICE,
        twilio_api_url=api_url,
        public_url="https://clinic.example",
        sms_per_second=1000.0,
    )

    TwilioSms.from_settings(settings).send(PATIENT, BODY, key=KEY)

    [stored] = peer.outgoing()
    assert stored.status_callback is not None
    assert stored.status_callback.startswith(f"https://clinic.example{STATUS_PATH}?")
