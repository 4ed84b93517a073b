"""The regsweep REST service (FastAPI): ``create_app(database_url=..., api_tokens=...)``,
or :func:`regcore.service.main.app_from_settings` from the environment's settings."""

from regcore.service.app import create_app

__all__ = ["create_app"]
