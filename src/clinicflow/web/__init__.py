"""The web app: health and metrics endpoints and the operations pages."""

from clinicflow.web.app import create_app

__all__ = ["create_app"]
