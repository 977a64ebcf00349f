"""Command line: serve a folder of NDJSON as a FHIR server with SMART Backend Services auth.

    python -m tests.fhir_peer --data DIR --client-id ID --jwks FILE [--port 8090]

Prints the FHIR base URL on its own line to stdout (flushed) once the port is bound, then
serves until interrupted (Ctrl-C or SIGTERM). The demo and the benchmark start it this way.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tests.fhir_peer.auth import JwksSource
from tests.fhir_peer.peer import FhirPeer, PeerConfig
from tests.fhir_peer.server import base_url, bind, make_server


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line options."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fhir_peer",
        description="FHIR R4 test peer: SMART Backend Services, search, Bulk Data export.",
    )
    parser.add_argument("--data", type=Path, help="folder of *.ndjson files to serve")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8090, help="port (0 = any free port)")
    parser.add_argument("--client-id", required=True, help="the client_id to register")
    keys = parser.add_mutually_exclusive_group(required=True)
    keys.add_argument("--jwks", type=Path, help="file with the client's public JWKS")
    keys.add_argument("--jwks-url", help="URL of the client's JWKS, fetched at token time")
    parser.add_argument("--export-polls", type=int, default=1, help="202 polls before done")
    parser.add_argument("--retry-after", type=int, default=1, help="Retry-After while exporting")
    parser.add_argument("--token-lifetime", type=int, default=300, help="access token seconds")
    parser.add_argument("--max-page-size", type=int, default=500, help="cap on _count")
    parser.add_argument(
        "--export-file-max", type=int, default=100_000, help="resources per export file"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Load, bind, print the base URL, serve."""
    args = parse_args(argv)
    jwks: JwksSource = args.jwks_url or json.loads(args.jwks.read_text())
    peer = FhirPeer(
        PeerConfig(
            clients={args.client_id: jwks},
            token_lifetime_s=args.token_lifetime,
            export_polls=args.export_polls,
            retry_after_s=args.retry_after,
            max_page_size=args.max_page_size,
            export_file_max_resources=args.export_file_max,
        )
    )
    if args.data is not None:
        count = peer.load_ndjson_folder(args.data)
        print(f"loaded {count} resources from {args.data}", file=sys.stderr, flush=True)  # noqa: T201
    sock = bind(args.host, args.port)
    print(base_url(sock), flush=True)  # noqa: T201 - the caller reads the URL from stdout
    make_server(peer.app).run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
