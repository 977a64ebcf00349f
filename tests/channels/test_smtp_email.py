"""Patient e-mail against a real SMTP server on loopback: what arrives, how each failure reads."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from pydantic import SecretStr
from tests.channels.smtp_server import (
    LoopbackSmtp,
    RecordingHandler,
    SelfSignedCert,
    free_port,
    make_self_signed_cert,
    smtp_server,
)

from clinicflow.channels.smtp_email import (
    EmailError,
    SmtpEmail,
    SmtpTls,
    message_id_for,
)
from clinicflow.clock import FakeClock
from clinicflow.engine.handlers import OutcomeUnknownError
from clinicflow.errors import ConfigError
from clinicflow.settings import Settings

KEY = "reminder:Appointment/9:48h"
TO = "ana.nunez@example.org"
SUBJECT = "Su cita del martes"
TEXT = "Hola Ana: su cita es el martes a las 10:30. ¿Podrá venir? Niño, señal, acción.\n"
HTML = "<p>Hola Ana: su cita es el <b>martes</b> a las 10:30. ¿Podrá venir? Niño, acción.</p>\n"
UNSUBSCRIBE = "https://clinic.example/unsubscribe/abc.def"
FROM = "Clínica Sol <reminders@clinic.example>"
CREDENTIAL = "s3cret"


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> SelfSignedCert:
    return make_self_signed_cert(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def plain_server() -> Iterator[LoopbackSmtp]:
    with smtp_server() as server:
        yield server


def _mailer(
    server: LoopbackSmtp,
    clock: FakeClock,
    *,
    tls: SmtpTls = SmtpTls.NONE,
    ssl_context: ssl.SSLContext | None = None,
    username: str | None = None,
    password: str | None = None,
) -> SmtpEmail:
    return SmtpEmail(
        server.host,
        server.port,
        email_from=FROM,
        clock=clock,
        tls=tls,
        ssl_context=ssl_context,
        username=username,
        password=password,
        timeout_s=5.0,
    )


def _send(mailer: SmtpEmail, key: str = KEY, to: str = TO) -> str:
    return mailer.send(to, SUBJECT, TEXT, HTML, key=key, unsubscribe_url=UNSUBSCRIBE).message_id


def test_text_and_html_arrive_intact_with_accents(
    plain_server: LoopbackSmtp, clock: FakeClock
) -> None:
    _send(_mailer(plain_server, clock))
    [received] = plain_server.messages
    message = received.message()
    assert received.mail_from == "reminders@clinic.example"
    assert received.rcpt_tos == [TO]
    assert message.get_content_type() == "multipart/alternative"
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None
    assert html_part is not None
    assert text_part.get_content() == TEXT
    assert html_part.get_content() == HTML
    assert message["Subject"] == SUBJECT
    assert message["From"] == FROM
    assert message["To"] == TO


def test_headers_carry_a_message_id_per_key_a_date_and_one_click_unsubscribe(
    plain_server: LoopbackSmtp, clock: FakeClock
) -> None:
    mailer = _mailer(plain_server, clock)
    first = _send(mailer)
    again = _send(mailer)
    other = _send(mailer, key="reminder:Appointment/9:2h")
    sent = [received.message() for received in plain_server.messages]
    assert first == again == message_id_for(KEY, "clinic.example")
    assert other != first
    assert [m["Message-ID"] for m in sent] == [first, first, other]
    assert first.endswith("@clinic.example>")
    assert "Appointment" not in first
    assert sent[0]["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert sent[0]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsedate_to_datetime(sent[0]["Date"]) == clock.now()


def test_starttls_with_a_trusted_certificate_delivers(
    cert: SelfSignedCert, clock: FakeClock
) -> None:
    with smtp_server(cert=cert) as server:
        _send(_mailer(server, clock, tls=SmtpTls.STARTTLS, ssl_context=cert.client_context()))
    assert len(server.messages) == 1


def test_implicit_tls_with_a_trusted_certificate_delivers(
    cert: SelfSignedCert, clock: FakeClock
) -> None:
    with smtp_server(cert=cert, implicit_tls=True) as server:
        _send(_mailer(server, clock, tls=SmtpTls.TLS, ssl_context=cert.client_context()))
    assert len(server.messages) == 1


def test_an_untrusted_certificate_is_refused_before_anything_is_sent(
    cert: SelfSignedCert, clock: FakeClock
) -> None:
    with smtp_server(cert=cert) as server, pytest.raises(EmailError) as caught:
        _send(_mailer(server, clock, tls=SmtpTls.STARTTLS))  # system CAs only
    assert server.messages == []
    assert caught.value.code == "email.certificate"
    assert not caught.value.retryable
    assert "certificate" in caught.value.message


def test_a_server_without_starttls_is_refused_rather_than_sent_in_clear(
    plain_server: LoopbackSmtp, clock: FakeClock
) -> None:
    with pytest.raises(EmailError, match="does not offer STARTTLS") as caught:
        _send(_mailer(plain_server, clock, tls=SmtpTls.STARTTLS))
    assert plain_server.messages == []
    assert not caught.value.retryable


def test_login_over_starttls_when_a_username_is_set(cert: SelfSignedCert, clock: FakeClock) -> None:
    with smtp_server(cert=cert, users={"clinic": CREDENTIAL}) as server:
        mailer = _mailer(
            server,
            clock,
            tls=SmtpTls.STARTTLS,
            ssl_context=cert.client_context(),
            username="clinic",
            password=CREDENTIAL,
        )
        _send(mailer)
    [received] = server.messages
    assert received.login == "clinic"


def test_a_wrong_password_names_the_settings_to_check(
    cert: SelfSignedCert, clock: FakeClock
) -> None:
    with smtp_server(cert=cert, users={"clinic": CREDENTIAL}) as server:
        mailer = _mailer(
            server,
            clock,
            tls=SmtpTls.STARTTLS,
            ssl_context=cert.client_context(),
            username="clinic",
            password=CREDENTIAL + "-wrong",
        )
        with pytest.raises(EmailError) as caught:
            _send(mailer)
    assert server.messages == []
    assert caught.value.code == "email.login_refused"
    assert not caught.value.retryable
    assert "CLINICFLOW_SMTP_PASSWORD" in caught.value.message


def test_a_refused_recipient_is_permanent_and_says_the_address_is_the_problem(
    clock: FakeClock,
) -> None:
    handler = RecordingHandler(rcpt_reply=f"550 5.1.1 <{TO}>: Recipient address rejected")
    with smtp_server(handler=handler) as server, pytest.raises(EmailError) as caught:
        _send(_mailer(server, clock))
    assert not caught.value.retryable
    assert caught.value.code == "email.refused"
    assert caught.value.message.startswith(
        "The mail server refused the patient's e-mail address: 550 5.1.1"
    )
    assert "Recipient address rejected" in caught.value.message
    assert TO not in caught.value.message


def test_a_deferred_recipient_is_retryable(clock: FakeClock) -> None:
    handler = RecordingHandler(rcpt_reply="451 4.7.1 Greylisted, try again later")
    with smtp_server(handler=handler) as server, pytest.raises(EmailError) as caught:
        _send(_mailer(server, clock))
    assert caught.value.retryable
    assert caught.value.code == "email.deferred"
    assert "451 4.7.1 Greylisted" in caught.value.message


def test_a_refused_connection_is_retryable(clock: FakeClock) -> None:
    mailer = SmtpEmail("127.0.0.1", free_port(), email_from=FROM, clock=clock, tls=SmtpTls.NONE)
    with pytest.raises(EmailError) as caught:
        _send(mailer)
    assert caught.value.retryable
    assert caught.value.code == "email.unavailable"


def test_a_connection_dropped_after_data_leaves_the_outcome_unknown(clock: FakeClock) -> None:
    handler = RecordingHandler(drop_after_data=True)
    with smtp_server(handler=handler) as server, pytest.raises(OutcomeUnknownError) as caught:
        _send(_mailer(server, clock))
    assert "may or may not have been accepted" in caught.value.message


def test_a_message_refused_after_data_is_permanent_not_unknown(clock: FakeClock) -> None:
    handler = RecordingHandler(data_reply="554 5.7.1 Message rejected as spam")
    with smtp_server(handler=handler) as server, pytest.raises(EmailError) as caught:
        _send(_mailer(server, clock))
    assert not caught.value.retryable
    assert caught.value.message.startswith("The mail server refused the message: 554 5.7.1")


def test_an_invalid_address_is_refused_before_connecting(clock: FakeClock) -> None:
    mailer = SmtpEmail("127.0.0.1", free_port(), email_from=FROM, clock=clock, tls=SmtpTls.NONE)
    with pytest.raises(EmailError) as caught:
        _send(mailer, to="ana@example.org\r\nBcc: everyone@example.org")
    assert caught.value.code == "email.bad_address"
    assert not caught.value.retryable


def test_unencrypted_smtp_is_refused_for_a_host_off_this_machine(clock: FakeClock) -> None:
    with pytest.raises(ConfigError, match="CLINICFLOW_SMTP_TLS"):
        SmtpEmail("smtp.example.org", 25, email_from=FROM, clock=clock, tls=SmtpTls.NONE)


def test_settings_build_a_mailer_with_their_tls_mode_and_login(
    clock: FakeClock, tmp_path: Path
) -> None:
    settings = Settings(
        smtp_host="smtp.example.org",
        smtp_port=465,
        smtp_tls="tls",
        smtp_username="clinic",
        smtp_password=SecretStr(CREDENTIAL),
        email_from=FROM,
        data_dir=tmp_path,
    )
    mailer = SmtpEmail.from_settings(
        settings, clock=clock, ssl_context=ssl.create_default_context()
    )
    assert (mailer.host, mailer.port, mailer.tls, mailer.username) == (
        "smtp.example.org",
        465,
        SmtpTls.TLS,
        "clinic",
    )
    with pytest.raises(ConfigError, match="CLINICFLOW_SMTP_TLS"):
        SmtpEmail.from_settings(settings.model_copy(update={"smtp_tls": "ssl"}), clock=clock)
