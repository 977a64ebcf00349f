"""`clinicflow serve`: the web app under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from clinicflow.cli.runtime import Runtime


def run_web(rt: Runtime, host: str, port: int, *, workers: int = 1) -> None:
    """Serve the web app until stopped (in `workers` processes: each request's Python runs under
    one process's GIL, so more processes use more cores; SQLite in WAL mode serves them all)."""
    # Imported here: FastAPI and uvicorn add ~0.4 s to every other command's start-up.
    import uvicorn

    if workers > 1:
        # Each worker process builds its app from the same sources (CLINICFLOW_*, the TOML file
        # `--config` named, the working directory), so it gets the same settings as this one.
        uvicorn.run(
            "clinicflow.web.asgi:app_from_environment",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_config=None,
            access_log=False,
        )
        return
    from clinicflow.web import create_app

    app = create_app(rt.settings, db=rt.db, clock=rt.clock)
    uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Server processes (default: CLINICFLOW_WEB_WORKERS)")
    ] = None,
) -> None:
    """Serve the web app: staff pages, the REST API, patient links, webhooks, health, metrics."""
    rt = Runtime.load()
    count = workers or rt.settings.web_workers
    rt.console.print(
        f"clinicflow is serving on http://{host}:{port} with {count} process"
        f"{'es' if count > 1 else ''}  (Ctrl-C stops it)"
    )
    run_web(rt, host, port, workers=count)
