"""The peer's HTTP side: Twilio's Messages endpoints (API 2010-04-01) and a webhook sink.

Requests are form-encoded and authenticated with HTTP Basic (account SID : auth token); answers
are JSON in Twilio's shapes, errors as {"code", "message", "more_info", "status"}.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from tests.twilio_peer.peer import API_VERSION, Fault, StoredMessage, WebhookReceipt, new_sid

if TYPE_CHECKING:
    from tests.twilio_peer.peer import TwilioPeer

_E164 = re.compile(r"^\+[1-9]\d{1,14}$")
_MESSAGES = f"/{API_VERSION}/Accounts/{{account_sid}}/Messages.json"
_MESSAGE = f"/{API_VERSION}/Accounts/{{account_sid}}/Messages/{{sid}}.json"
_MAX_PAGE_SIZE = 1000


class TwilioApiError(Exception):
    """An error answer in Twilio's JSON shape."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def response(self) -> Response:
        body = {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }
        return JSONResponse(body, self.status)


class _DropAfterHeaders(Response):
    """Sends a 201's headers and part of its body, then fails: the connection is cut mid-answer."""

    async def __call__(self, _scope: Scope, _receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 201, "headers": headers})
        await send({"type": "http.response.body", "body": b'{"sid": "SM', "more_body": True})
        raise ConnectionAbortedError("twilio peer: injected drop after accepting")


def _peer(request: Request) -> TwilioPeer:
    peer: TwilioPeer = request.app.state.peer
    return peer


def _authenticate(request: Request) -> TwilioPeer:
    peer = _peer(request)
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user = password = ""
    if scheme.lower() != "basic" or (user, password) != (peer.account_sid, peer.auth_token):
        raise TwilioApiError(401, 20003, "Authenticate")
    if request.path_params["account_sid"] != peer.account_sid:
        raise TwilioApiError(404, 20404, "The requested resource was not found")
    with peer.lock:
        peer.requests.append((request.method, f"{request.url.path}?{request.url.query}"))
    return peer


async def _misbehave(fault: Fault | None) -> Response | None:
    """The faulty answer for `fault` (after its delay), or None to answer normally."""
    if fault is None:
        return None
    if fault.delay_s > 0:
        await asyncio.sleep(fault.delay_s)
    if fault.drop_connection:
        return _DropAfterHeaders()
    if fault.status is not None:
        code = fault.code or {429: 20429, 503: 20503}.get(fault.status, 20500)
        return TwilioApiError(fault.status, code, f"injected fault: HTTP {fault.status}").response()
    return None


def _new_message(peer: TwilioPeer, form: dict[str, str]) -> StoredMessage:
    """Validate a create request as Twilio does, in the order Twilio reports problems."""
    to = form.get("To", "")
    if not to:
        raise TwilioApiError(400, 21604, "A 'To' phone number is required.")
    if not _E164.match(to):
        raise TwilioApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
    service = form.get("MessagingServiceSid")
    sender = form.get("From", "")
    if service:
        if service not in peer.services:
            raise TwilioApiError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        sender = sender or sorted(peer.numbers)[0]  # Twilio picks a number from the pool
    elif not sender:
        raise TwilioApiError(400, 21603, "A 'From' phone number is required.")
    elif sender not in peer.numbers:
        raise TwilioApiError(
            400,
            21606,
            f"The From phone number {sender} is not a valid, SMS-capable inbound phone number "
            "or short code for your account.",
        )
    body = form.get("Body", "")
    if not body:
        raise TwilioApiError(400, 21602, "Message body is required.")
    if to in peer.unsubscribed:
        raise TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")
    return StoredMessage(
        sid=new_sid("SM"),
        account_sid=peer.account_sid,
        to=to,
        from_=sender,
        body=body,
        direction="outbound-api",
        date_created=peer.now(),
        messaging_service_sid=service or None,
        status_callback=form.get("StatusCallback") or None,
        status="accepted" if service else "queued",
    )


async def create_message(request: Request) -> Response:
    """POST .../Messages.json: send a message."""
    peer = _authenticate(request)
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    message = _new_message(peer, form)
    fault = peer.take_fault("POST")
    accepted_first = fault is not None and fault.accept
    if accepted_first:
        peer.store(message)
    faulty = await _misbehave(fault)
    if faulty is not None:
        return faulty
    if not accepted_first:
        peer.store(message)
    return JSONResponse(message.to_json(), 201)


def _date_bound(text: str, *, end_of_day: bool) -> datetime:
    """A DateSent filter value: YYYY-MM-DD (a whole GMT day) or an ISO 8601 instant."""
    if len(text) == 10:
        day = date.fromisoformat(text)
        return datetime.combine(day, time.max if end_of_day else time.min, UTC)
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _matches(message: StoredMessage, query: dict[str, str]) -> bool:
    if "To" in query and message.to != query["To"]:
        return False
    if "From" in query and message.from_ != query["From"]:
        return False
    dated = {k: v for k, v in query.items() if k.startswith("DateSent")}
    if not dated:
        return True
    sent = message.date_sent
    if sent is None:  # queued messages have no date_sent, so date filters never match them
        return False
    if "DateSent" in dated:
        day = _date_bound(dated["DateSent"], end_of_day=False).date()
        if sent.date() != day:
            return False
    if "DateSent>" in dated and sent < _date_bound(dated["DateSent>"], end_of_day=False):
        return False
    return not ("DateSent<" in dated and sent > _date_bound(dated["DateSent<"], end_of_day=True))


async def list_messages(request: Request) -> Response:
    """GET .../Messages.json: messages newest first, filtered, in pages."""
    peer = _authenticate(request)
    faulty = await _misbehave(peer.take_fault("GET"))
    if faulty is not None:
        return faulty
    query = dict(request.query_params.items())
    page_size = min(int(query.pop("PageSize", "50")), _MAX_PAGE_SIZE)
    page = int(query.pop("Page", "0"))
    query.pop("PageToken", None)
    with peer.lock:
        found = [m for m in reversed(peer.messages) if _matches(m, query)]
    start = page * page_size
    chunk = found[start : start + page_size]
    path = request.url.path

    def page_uri(number: int) -> str:
        params = {**query, "PageSize": str(page_size), "Page": str(number)}
        if number > 0:
            params["PageToken"] = f"PA{number}"
        return f"{path}?{urlencode(params)}"

    has_next = start + page_size < len(found)
    return JSONResponse(
        {
            "messages": [m.to_json() for m in chunk],
            "end": start + max(len(chunk) - 1, 0),
            "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
            "start": start,
            "uri": page_uri(page),
        }
    )


async def fetch_message(request: Request) -> Response:
    """GET .../Messages/{sid}.json: one message."""
    peer = _authenticate(request)
    faulty = await _misbehave(peer.take_fault("GET"))
    if faulty is not None:
        return faulty
    message = peer.message(request.path_params["sid"])
    if message is None:
        raise TwilioApiError(404, 20404, "The requested resource was not found")
    return JSONResponse(message.to_json())


async def webhook_sink(request: Request) -> Response:
    """POST /webhooks/...: keep what arrived, answer with empty TwiML as a receiver would."""
    form = {k: v[-1] for k, v in parse_qs((await request.body()).decode()).items()}
    receipt = WebhookReceipt(str(request.url), form, request.headers.get("x-twilio-signature"))
    peer = _peer(request)
    with peer.lock:
        peer.webhooks.append(receipt)
    return Response("<Response/>", media_type="text/xml")


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TwilioApiError)
    return exc.response()


def build_app(peer: TwilioPeer) -> ASGIApp:
    """The peer's ASGI app."""
    app = Starlette(
        routes=[
            Route(_MESSAGES, create_message, methods=["POST"]),
            Route(_MESSAGES, list_messages, methods=["GET"]),
            Route(_MESSAGE, fetch_message, methods=["GET"]),
            Route("/webhooks/{rest:path}", webhook_sink, methods=["POST"]),
        ],
        exception_handlers={TwilioApiError: _api_error},
    )
    app.state.peer = peer
    return app
