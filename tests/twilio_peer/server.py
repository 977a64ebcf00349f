"""Serving the Twilio peer with uvicorn in a background thread on loopback (port 0: a free one)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from starlette.types import ASGIApp, Receive, Scope, Send
from tests.fhir_peer.server import bind, make_server
from tests.twilio_peer.peer import TwilioPeer

STARTUP_TIMEOUT_S = 10.0


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
    with running_app(peer.app, host, port) as url:
        peer.base_url = url
        yield url


@contextmanager
def running_switch(host: str = "127.0.0.1", port: int = 0) -> Iterator[PeerSwitch]:
    """Serve a PeerSwitch; give it a peer with `switch.use(peer)`."""
    switch = PeerSwitch()
    with running_app(switch, host, port) as url:
        switch.base_url = url
        yield switch


@contextmanager
def running_app(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve an ASGI app in a background thread; yields http://host:port; stops it on exit."""
    sock = bind(host, port)
    server = make_server(app)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="twilio-peer", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError("the Twilio peer did not start (see the log above)")
        time.sleep(0.01)
    bound_host, bound_port = sock.getsockname()[:2]
    try:
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
