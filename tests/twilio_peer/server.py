"""Serving the Twilio peer with uvicorn in a background thread on loopback (port 0: a free one)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import Receive, Scope, Send
from tests.fhir_peer.server import serving
from tests.twilio_peer.peer import TwilioPeer


class PeerSwitch:
    """An ASGI app that serves whichever peer it holds: one server, a fresh peer per test
    (stopping uvicorn takes a fifth of a second, starting a peer nothing)."""

    def __init__(self, peer: TwilioPeer | None = None) -> None:
        self.peer = peer
        self.base_url = ""

    def use(self, peer: TwilioPeer) -> TwilioPeer:
        """Serve `peer` from now on; returns it with its base_url set."""
        peer.base_url = self.base_url
        self.peer = peer
        return peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.peer is None:
            raise RuntimeError("PeerSwitch has no peer to serve")
        await self.peer.app(scope, receive, send)


@contextmanager
def running_peer(peer: TwilioPeer, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `peer`; yields its base URL (http://127.0.0.1:<port>); stops it on exit."""
    with serving(peer.app, host, port, name="Twilio peer") as url:
        peer.base_url = url
        yield url


@contextmanager
def running_switch(host: str = "127.0.0.1", port: int = 0) -> Iterator[PeerSwitch]:
    """Serve a PeerSwitch; give it a peer with `switch.use(peer)`."""
    switch = PeerSwitch()
    with serving(switch, host, port, name="Twilio peer") as url:
        switch.base_url = url
        yield switch
