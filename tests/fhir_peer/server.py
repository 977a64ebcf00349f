"""Running the peer with uvicorn on loopback: in a background thread for tests, or in front.

The listening socket is bound before uvicorn starts, so the port is known (port 0 = a free
one) and a client may connect as soon as the URL is printed or yielded: early connections
wait in the listen backlog instead of being refused.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp
from tests.fhir_peer.context import FHIR_PATH
from tests.fhir_peer.peer import FhirPeer

STARTUP_TIMEOUT_S = 10.0


def bind(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on host:port (0 picks a free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto must be IPPROTO_TCP (not 0): asyncio only sets TCP_NODELAY on accepted sockets of
    # that proto, and without it Nagle + delayed ACK add ~40 ms to every response.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(128)
    return sock


def origin(sock: socket.socket) -> str:
    """http://host:port of a bound socket, e.g. http://127.0.0.1:54321."""
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def base_url(sock: socket.socket) -> str:
    """The FHIR base URL for a bound socket, e.g. http://127.0.0.1:54321/fhir."""
    return f"{origin(sock)}{FHIR_PATH}"


def make_server(app: ASGIApp) -> uvicorn.Server:
    """A quiet uvicorn server for an ASGI app (no access log, no lifespan)."""
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


@contextmanager
def running_peer(peer: FhirPeer, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve `peer` in a background thread; yields its FHIR base URL; stops it on exit."""
    with running_app(peer.app, host, port) as url:
        yield url


@contextmanager
def running_app(app: ASGIApp, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Serve any ASGI app like running_peer (e.g. one that switches between peers)."""
    with serving(app, host, port, name="FHIR peer") as url:
        yield f"{url}{FHIR_PATH}"


@contextmanager
def serving(
    app: ASGIApp, host: str = "127.0.0.1", port: int = 0, *, name: str = "peer"
) -> Iterator[str]:
    """Serve an ASGI app in a background thread; yields http://host:port; stops it on exit.

    Every test peer (FHIR, Twilio) runs through this.
    """
    sock = bind(host, port)
    server = make_server(app)
    thread = threading.Thread(
        target=server.run,
        kwargs={"sockets": [sock]},
        name=name.lower().replace(" ", "-"),
        daemon=True,
    )
    thread.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            sock.close()
            raise RuntimeError(f"the {name} did not start (see the log above)")
        time.sleep(0.01)
    try:
        yield origin(sock)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
