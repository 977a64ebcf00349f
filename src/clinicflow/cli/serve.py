"""`clinicflow serve`: the web app under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from clinicflow.cli.runtime import Runtime
from clinicflow.web import create_app


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the web app: automations and runs, /healthz, /readyz and /metrics."""
    rt = Runtime.load()
    app = create_app(rt.settings, db=rt.db, clock=rt.clock)
    rt.console.print(f"clinicflow is serving on http://{host}:{port}  (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
