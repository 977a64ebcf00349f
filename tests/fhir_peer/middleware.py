"""Outermost ASGI layer: record every request, then apply an armed fault before routing.

A plain ASGI middleware rather than Starlette's BaseHTTPMiddleware, which would buffer
streaming export downloads; this one only watches the messages go by.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tests.fhir_peer.faults import FaultBook


@dataclass
class RequestLog:
    """One request as the peer saw it: `status` is filled in when the answer starts (0 before).

    Header names are lower-case. `body` holds the request body (e.g. the token request form)
    as far as the peer read it.
    """

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    status: int = 0
    body: bytes = field(default=b"", repr=False)


class PeerMiddleware:
    """Logs each HTTP request to `record`, and answers it with a fault when one matches."""

    def __init__(self, app: ASGIApp, faults: FaultBook, record: Callable[[RequestLog], None]):
        self.app = app
        self.faults = faults
        self.record = record

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query_text = scope.get("query_string", b"").decode("latin-1")
        entry = RequestLog(
            method=scope["method"],
            path=scope["path"],
            query=parse_qs(query_text, keep_blank_values=True),
            headers={k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]},
        )
        self.record(entry)

        async def logged_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                entry.body += message.get("body", b"")
            return message

        async def logged_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                entry.status = message["status"]
            await send(message)

        target = f"{scope['path']}?{query_text}" if query_text else scope["path"]
        fault = self.faults.take(scope["method"], target)
        if fault is not None and fault.delay_s > 0:
            await asyncio.sleep(fault.delay_s)
        elif fault is not None:
            await _drain(logged_receive)  # so the log shows what the client sent
            await fault.response()(scope, logged_receive, logged_send)
            return
        await self.app(scope, logged_receive, logged_send)


async def _drain(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
