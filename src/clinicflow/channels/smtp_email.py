"""Patient e-mail over SMTP: one message per call, each SMTP failure mapped to a named outcome.

The conversation is driven step by step (EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA) rather than with
`sendmail`, because the step that failed decides the outcome: anything refused before DATA surely
did not send, while a failure after the DATA command may have left a message the server accepted.

SMTP cannot be asked later whether a message went out, so a handler built on this class must
answer `reconcile` with "not provably delivered" and have a person look (a work item) instead of
resending blindly. The deterministic Message-ID makes such a resend recognisable downstream.
"""

from __future__ import annotations

import hashlib
import ipaddress
import smtplib
import ssl
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from enum import StrEnum

from clinicflow.clock import Clock
from clinicflow.engine.handlers import OutcomeUnknownError
from clinicflow.errors import ClinicflowError, ConfigError
from clinicflow.settings import Settings

DEFAULT_TIMEOUT_S = 20.0  # per socket operation; well under the effect lease (120 s)


class SmtpTls(StrEnum):
    """How the connection is encrypted: STARTTLS on 587, implicit TLS on 465, or none (loopback)."""

    STARTTLS = "starttls"
    TLS = "tls"
    NONE = "none"


class EmailError(ClinicflowError):
    """The mail server refused or could not take a message; surely not sent."""

    code = "email.error"


@dataclass(frozen=True, slots=True)
class SentEmail:
    """What the server accepted: the Message-ID (derived from the effect key, so no PHI)."""

    message_id: str


def message_id_for(key: str, sender_domain: str) -> str:
    """The Message-ID for an effect key: the same key gives the same id on every attempt."""
    digest = hashlib.sha256(key.encode()).hexdigest()[:32]
    return f"<{digest}@{sender_domain}>"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SmtpEmail:
    """Sends patient e-mail through one SMTP server, encrypted and certificate-checked."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        email_from: str,
        clock: Clock,
        tls: SmtpTls = SmtpTls.STARTTLS,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        # Reminders carry visit details: only a loopback relay may see them unencrypted.
        if tls is SmtpTls.NONE and not _is_loopback(host):
            raise ConfigError(
                f"CLINICFLOW_SMTP_TLS is 'none' but the SMTP host {host!r} is not on this "
                "machine; use 'starttls' (port 587) or 'tls' (port 465)."
            )
        _, address = parseaddr(email_from)
        if "@" not in address:
            raise ConfigError(
                f"CLINICFLOW_EMAIL_FROM ({email_from!r}) has no address; write it like "
                "'Sunrise Clinic <reminders@sunrise.example>'."
            )
        self.host = host
        self.port = port
        self.tls = tls
        self.username = username
        self._password = password
        self.email_from = email_from
        self.sender_address = address
        self.sender_domain = address.rsplit("@", 1)[1]
        self._clock = clock
        self._ssl_context = ssl_context or ssl.create_default_context()
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(
        cls, settings: Settings, *, clock: Clock, ssl_context: ssl.SSLContext | None = None
    ) -> SmtpEmail:
        """The server named by CLINICFLOW_SMTP_*; ConfigError when it is unset or malformed."""
        if not settings.smtp_host:
            raise ConfigError("CLINICFLOW_SMTP_HOST is not set, so e-mail goes to the sandbox.")
        try:
            tls = SmtpTls(settings.smtp_tls)
        except ValueError:
            raise ConfigError(
                f"CLINICFLOW_SMTP_TLS is {settings.smtp_tls!r}; use starttls, tls or none."
            ) from None
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return cls(
            settings.smtp_host,
            settings.smtp_port,
            email_from=settings.email_from,
            clock=clock,
            tls=tls,
            username=settings.smtp_username,
            password=password,
            ssl_context=ssl_context,
        )

    def compose(
        self, to: str, subject: str, text: str, html: str, *, key: str, unsubscribe_url: str
    ) -> EmailMessage:
        """The message as it will be sent: text and HTML alternatives, one-click unsubscribe."""
        msg = EmailMessage()
        msg["From"] = self.email_from
        try:
            msg["To"] = Address(addr_spec=to)
        except ValueError as exc:  # also refuses line breaks, so no header can be injected
            raise EmailError(
                "The patient's e-mail address is not a valid address; please check it with "
                "the patient.",
                code="email.bad_address",
            ) from exc
        msg["Subject"] = subject
        msg["Date"] = format_datetime(self._clock.now())
        msg["Message-ID"] = message_id_for(key, self.sender_domain)
        # RFC 8058: mail clients offer an unsubscribe button that POSTs to this URL.
        msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        # Quoted-printable keeps accents 7-bit clean, so no server needs 8BITMIME.
        msg.set_content(text, cte="quoted-printable")
        msg.add_alternative(html, subtype="html", cte="quoted-printable")
        return msg

    def send(
        self, to: str, subject: str, text: str, html: str, *, key: str, unsubscribe_url: str
    ) -> SentEmail:
        """Send once. EmailError: surely not sent; OutcomeUnknownError: the server may have it."""
        msg = self.compose(to, subject, text, html, key=key, unsubscribe_url=unsubscribe_url)
        smtp = self._connect()
        try:
            self._open_session(smtp)
            self._envelope(smtp, to)
            self._data(smtp, msg)
        finally:
            _close(smtp)
        return SentEmail(message_id=str(msg["Message-ID"]))

    @property
    def _where(self) -> str:
        """The server as messages name it."""
        return f"{self.host}:{self.port}"

    def _connect(self) -> smtplib.SMTP:
        where = self._where
        try:
            if self.tls is SmtpTls.TLS:
                return smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout_s, context=self._ssl_context
                )
            return smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        except ssl.SSLCertVerificationError as exc:
            raise _certificate_error(where, exc) from exc
        except smtplib.SMTPConnectError as exc:
            raise EmailError(
                f"The mail server {where} refused the connection "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); will try again.",
                code="email.unavailable",
                retryable=True,
            ) from exc
        except OSError as exc:  # refused, unreachable, timed out, reset
            raise EmailError(
                f"Could not reach the mail server {where} ({exc.__class__.__name__}); "
                "will try again.",
                code="email.unavailable",
                retryable=True,
            ) from exc

    def _open_session(self, smtp: smtplib.SMTP) -> None:
        """EHLO, STARTTLS when configured, and AUTH when a username is set."""
        where = self._where
        try:
            smtp.ehlo()
            if self.tls is SmtpTls.STARTTLS:
                smtp.starttls(context=self._ssl_context)
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self._password or "")
        except ssl.SSLCertVerificationError as exc:
            raise _certificate_error(where, exc) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise EmailError(
                f"The mail server {where} does not offer {_missing_feature(exc)}; check "
                "CLINICFLOW_SMTP_TLS and CLINICFLOW_SMTP_USERNAME against what the mail "
                "provider expects.",
                code="email.config",
            ) from exc
        except smtplib.SMTPAuthenticationError as exc:
            raise EmailError(
                f"The mail server {where} did not accept the login "
                f"({_reply(exc.smtp_code, exc.smtp_error)}); check CLINICFLOW_SMTP_USERNAME "
                "and CLINICFLOW_SMTP_PASSWORD.",
                code="email.login_refused",
            ) from exc
        except smtplib.SMTPResponseException as exc:
            refusal = _refusal(
                f"The mail server {where} refused to start a session", exc.smtp_code, exc.smtp_error
            )
            raise refusal from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise _lost_before_sending(where, exc) from exc

    def _envelope(self, smtp: smtplib.SMTP, to: str) -> None:
        """MAIL FROM and RCPT TO; a refusal here means nothing was sent."""
        try:
            code, reply = smtp.mail(self.sender_address)
            if code != 250:
                raise _refusal(
                    "The mail server refused the sender address (CLINICFLOW_EMAIL_FROM)",
                    code,
                    reply,
                )
            code, reply = smtp.rcpt(to)
            if code not in (250, 251):
                # The server often echoes the address; the patient's record already shows it.
                redacted = reply.replace(to.encode(), b"<address>")
                raise _refusal(
                    "The mail server refused the patient's e-mail address", code, redacted
                )
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            raise _lost_before_sending(self._where, exc) from exc

    def _data(self, smtp: smtplib.SMTP, msg: EmailMessage) -> None:
        """DATA and the message; from here on a lost reply may hide an accepted message."""
        body = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        try:
            code, reply = smtp.data(body)
        except smtplib.SMTPDataError as exc:  # DATA itself refused: no message went over
            raise _refusal(
                "The mail server refused to take the message", exc.smtp_code, exc.smtp_error
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise OutcomeUnknownError(
                f"The connection to the mail server {self._where} broke after the "
                f"message was sent ({exc.__class__.__name__}); it may or may not have been "
                "accepted, so it was not sent again.",
                code="email.outcome_unknown",
            ) from exc
        if code != 250:
            raise _refusal("The mail server refused the message", code, reply)


def _reply(code: int, reply: bytes | str) -> str:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    return f"{code} {text}".strip()


def _refusal(what: str, code: int, reply: bytes | str) -> EmailError:
    """4xx: try again later; 5xx (or anything odd): permanent, a person must look."""
    retryable = 400 <= code < 500
    then = "will try again" if retryable else "please check it with the patient"
    return EmailError(
        f"{what}: {_reply(code, reply)}; {then}.",
        code="email.deferred" if retryable else "email.refused",
        retryable=retryable,
    )


def _lost_before_sending(where: str, exc: Exception) -> EmailError:
    """The connection broke before DATA: nothing was sent, so trying again is safe."""
    return EmailError(
        f"Lost the connection to the mail server {where} before sending "
        f"({exc.__class__.__name__}); will try again.",
        code="email.unavailable",
        retryable=True,
    )


def _certificate_error(where: str, exc: ssl.SSLCertVerificationError) -> EmailError:
    return EmailError(
        f"The certificate of the mail server {where} could not be verified "
        f"({exc.verify_message}); check CLINICFLOW_SMTP_HOST is the name on the certificate.",
        code="email.certificate",
    )


def _missing_feature(exc: smtplib.SMTPNotSupportedError) -> str:
    return "STARTTLS" if "STARTTLS" in str(exc) else "login (AUTH)"


def _close(smtp: smtplib.SMTP) -> None:
    # QUIT is a courtesy; the outcome is already decided, so its failures do not matter.
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()
