"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives, for the e-mail tests.

It can speak STARTTLS or implicit TLS with a self-signed certificate made here, require a login,
refuse recipients with a chosen reply, or drop the connection once a message has arrived.
"""

from __future__ import annotations

import email
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True, slots=True)
class SelfSignedCert:
    """A certificate for localhost and 127.0.0.1, and a client context that trusts only it."""

    cert_path: Path
    key_path: Path
    pem: str

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cadata=self.pem)


def make_self_signed_cert(directory: Path) -> SelfSignedCert:
    """An EC P-256 self-signed certificate (fast to make) valid for a day either side of now."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    issued_at = datetime(2020, 1, 1, tzinfo=UTC)  # fixed, so no wall clock is read here
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued_at)
        .not_valid_after(issued_at + timedelta(days=365 * 30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    cert_path = directory / "smtp-cert.pem"
    key_path = directory / "smtp-key.pem"
    cert_path.write_bytes(pem)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return SelfSignedCert(cert_path, key_path, pem.decode())


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the server got it."""

    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    login: str | None

    def message(self) -> EmailMessage:
        # On the wire lines end in CRLF; a mailbox stores them as LF, and so do we here.
        content = self.content.replace(b"\r\n", b"\n")
        parsed = email.message_from_bytes(content, policy=default_policy)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """aiosmtpd hooks: keep messages; refuse recipients or messages, or drop the line, when told."""

    rcpt_reply: str | None = None
    drop_after_data: bool = False
    data_reply: str | None = None
    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: list[str]
    ) -> str:
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any
    ) -> str:
        if self.drop_after_data:
            # The message arrived but the reply never will: the client cannot tell which.
            server.transport.abort()
            return "250 OK"
        if self.data_reply:
            return self.data_reply
        login = session.login_data.decode() if session.authenticated else None
        self.messages.append(
            Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content, login)
        )
        return "250 Message accepted for delivery"


@dataclass(frozen=True, slots=True)
class LoopbackSmtp:
    """A running server: where it listens and what it has received."""

    host: str
    port: int
    handler: RecordingHandler

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


def free_port() -> int:
    """A port nobody listens on (aiosmtpd's self-check cannot use port 0; see DEPENDENCIES.md)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_server(
    *,
    cert: SelfSignedCert | None = None,
    implicit_tls: bool = False,
    users: dict[str, str] | None = None,
    handler: RecordingHandler | None = None,
) -> Iterator[LoopbackSmtp]:
    """Run a server for the block: STARTTLS when `cert` is given, implicit TLS if asked too."""
    handler = handler or RecordingHandler()
    kwargs: dict[str, Any] = {}
    if cert and implicit_tls:
        kwargs["ssl_context"] = cert.server_context()
    elif cert:
        kwargs["tls_context"] = cert.server_context()
        kwargs["require_starttls"] = True
    if users is not None:
        kwargs["authenticator"] = _authenticator(users)
        kwargs["auth_required"] = True
        kwargs["auth_require_tls"] = cert is not None
    controller = Controller(
        handler, hostname="127.0.0.1", port=free_port(), ready_timeout=5.0, **kwargs
    )
    controller.start()
    try:
        yield LoopbackSmtp("127.0.0.1", controller.port, handler)
    finally:
        controller.stop()


def _authenticator(users: dict[str, str]) -> Any:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login, password = auth_data.login.decode(), auth_data.password.decode()
        if users.get(login) != password:
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=auth_data)

    return authenticate
