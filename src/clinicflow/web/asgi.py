"""The app for an ASGI server's worker processes: each builds its own from the environment."""

from __future__ import annotations

from fastapi import FastAPI

from clinicflow.settings import Settings
from clinicflow.web.app import create_app


def app_from_environment() -> FastAPI:
    """The app `serve --workers N` runs in each process (uvicorn --factory)."""
    return create_app(Settings())
