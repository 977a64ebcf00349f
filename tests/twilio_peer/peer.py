"""TwilioPeer: the test Twilio account's state (numbers, messages, faults, webhooks received) and
the Python API tests use to arrange it and to play Twilio's side of webhooks. HTTP is in app.py.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from typing import Any

import httpx
from starlette.types import ASGIApp
from tests.twilio_peer.signing import twilio_signature

from clinicflow.clock import SystemClock

API_VERSION = "2010-04-01"


@dataclass
class Fault:
    """The next `times` requests with `method` misbehave.

    `status` answers with that HTTP status and Twilio error `code` instead of the real answer.
    `delay_s` holds the answer that long first (for client timeouts; a create stores its message
    after the delay). `drop_connection` sends the status line and headers, then closes the
    connection mid-body, as a crash would. With `accept` a create stores the message before
    misbehaving (Twilio took it, the client cannot know); without it a faulty create stores
    nothing.
    """

    method: str = "POST"
    status: int | None = None
    code: int | None = None
    times: int = 1
    delay_s: float = 0.0
    drop_connection: bool = False
    accept: bool = False


@dataclass
class StoredMessage:
    """One Message resource as the peer holds it."""

    sid: str
    account_sid: str
    to: str
    from_: str
    body: str
    direction: str
    date_created: datetime
    messaging_service_sid: str | None = None
    status_callback: str | None = None
    status: str = "queued"
    date_sent: datetime | None = None
    error_code: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The resource as Twilio's REST API renders it (dates in RFC 2822, counts as text)."""
        uri = f"/{API_VERSION}/Accounts/{self.account_sid}/Messages/{self.sid}"
        return {
            "account_sid": self.account_sid,
            "api_version": API_VERSION,
            "body": self.body,
            "date_created": format_datetime(self.date_created),
            "date_sent": format_datetime(self.date_sent) if self.date_sent else None,
            "date_updated": format_datetime(self.date_sent or self.date_created),
            "direction": self.direction,
            "error_code": self.error_code,
            "error_message": None,
            "from": self.from_,
            "messaging_service_sid": self.messaging_service_sid,
            "num_media": "0",
            "num_segments": "1",
            "price": None,
            "price_unit": "USD",
            "sid": self.sid,
            "status": self.status,
            "subresource_uris": {"media": f"{uri}/Media.json"},
            "to": self.to,
            "uri": f"{uri}.json",
        }


@dataclass(frozen=True)
class WebhookReceipt:
    """A webhook that arrived at the peer's /webhooks/ sink, as a receiver would see it."""

    url: str
    params: dict[str, str]
    signature: str | None


def new_sid(prefix: str) -> str:
    """A Twilio-style SID: two letters and 32 hex digits."""
    return prefix + secrets.token_hex(16)


class TwilioPeer:
    """One Twilio account: its credentials, its numbers and Messaging Services, its messages."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        numbers: set[str],
        *,
        services: set[str] | None = None,
        unsubscribed: set[str] | None = None,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.numbers = numbers
        self.services = services or set()
        self.unsubscribed = unsubscribed or set()
        self.now = now or SystemClock().now
        self.base_url = ""  # set by running_peer
        self.messages: list[StoredMessage] = []
        self.webhooks: list[WebhookReceipt] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query) of each API call
        self._faults: list[Fault] = []
        self.lock = threading.Lock()
        from tests.twilio_peer.app import build_app  # app.py needs this module's types

        self.app: ASGIApp = build_app(self)

    def add_fault(self, fault: Fault) -> Fault:
        """Arm a fault for the next matching requests."""
        with self.lock:
            self._faults.append(fault)
        return fault

    def take_fault(self, method: str) -> Fault | None:
        """The first armed fault for `method`, counting one firing of it."""
        with self.lock:
            for fault in self._faults:
                if fault.method == method:
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def store(self, message: StoredMessage) -> None:
        """Keep a message (thread-safe)."""
        with self.lock:
            self.messages.append(message)

    def outgoing(self) -> list[StoredMessage]:
        """Messages created through the API, oldest first."""
        with self.lock:
            return [m for m in self.messages if m.direction == "outbound-api"]

    def message(self, sid: str) -> StoredMessage | None:
        """The message with this SID, if the account holds it."""
        with self.lock:
            return next((m for m in self.messages if m.sid == sid), None)

    def signed_post(self, url: str, params: Mapping[str, str]) -> httpx.Response:
        """POST a form to `url` signed as Twilio signs webhooks (X-Twilio-Signature)."""
        signature = twilio_signature(url, params, self.auth_token)
        return httpx.post(url, data=dict(params), headers={"X-Twilio-Signature": signature})

    def post_status(self, sid: str, status: str, error_code: int | None = None) -> httpx.Response:
        """Move a message to `status` and post the signed status callback Twilio would send."""
        message = self.message(sid)
        if message is None or message.status_callback is None:
            raise LookupError(f"no message {sid} with a StatusCallback")
        with self.lock:
            message.status = status
            message.error_code = error_code
            if status in {"sent", "delivered", "undelivered"} and message.date_sent is None:
                message.date_sent = self.now()
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": message.to,
        }
        if error_code is not None:
            params["ErrorCode"] = str(error_code)
        return self.signed_post(message.status_callback, params)

    def send_inbound(
        self, url: str, from_: str, body: str, to: str | None = None
    ) -> httpx.Response:
        """A patient texts the practice: store the inbound message, post the signed webhook."""
        to = to or sorted(self.numbers)[0]
        sid = new_sid("SM")
        self.store(
            StoredMessage(
                sid, self.account_sid, to, from_, body, "inbound", self.now(), status="received"
            )
        )
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "Body": body,
            "From": from_,
            "MessageSid": sid,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "SmsStatus": "received",
            "To": to,
        }
        return self.signed_post(url, params)
