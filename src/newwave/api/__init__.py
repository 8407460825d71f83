"""The HTTP API (FastAPI) and the web client it serves."""

from newwave.api.app import create_app

__all__ = ["create_app"]
