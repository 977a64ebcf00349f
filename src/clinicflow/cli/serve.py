"""`clinicflow serve`: the web app under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from clinicflow.cli.runtime import Runtime


def run_web(rt: Runtime, host: str, port: int) -> None:
    """Serve the web app until stopped."""
    # Imported here: FastAPI and uvicorn add ~0.4 s to every other command's start-up.
    import uvicorn

    from clinicflow.web import create_app

    app = create_app(rt.settings, db=rt.db, clock=rt.clock)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Serve the web app: automations and runs, /healthz, /readyz and /metrics."""
    rt = Runtime.load()
    rt.console.print(f"clinicflow is serving on http://{host}:{port}  (Ctrl-C stops it)")
    run_web(rt, host, port)
