"""The service's entry point: settings in, a running app out.

``regsweep serve`` calls :func:`serve` (or :func:`app_from_settings` to embed the app);
``uvicorn --factory regcore.service.main:app_from_env`` works too. This is the only module of the
service that reads :class:`~regcore.settings.Settings`.
"""

from __future__ import annotations

import ipaddress
import logging

from fastapi import FastAPI

from regcore.service.app import create_app
from regcore.service.auth import parse_tokens
from regcore.settings import Settings
from regcore.store import upgrade_database
from regcore.workloads import load_plugin_modules

_log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """Whether ``host`` accepts connections from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def app_from_settings(
    settings: Settings, *, host: str | None = None, upgrade: bool = True
) -> FastAPI:
    """The app for ``settings``: its database upgraded (``upgrade``), its tokens loaded, GET
    calls open without a token when ``settings.read_only_open``, and the REGSWEEP_PLUGINS
    modules imported (specs are validated against the workloads this process has, so the
    service needs the same plug-ins as the workers).

    Without tokens every call is open, so that is logged as a warning unless ``host`` (where
    the service will listen) is loopback-only.
    """
    load_plugin_modules(settings.plugin_modules)  # WorkloadPluginError names the one failing
    tokens = parse_tokens(settings.api_tokens)
    if tokens is None and not (host is not None and is_loopback(host)):
        _log.warning(
            "REGSWEEP_API_TOKENS is unset: anyone who can reach %s may submit and delete "
            "sweeps; set name:token pairs, or listen on 127.0.0.1 only",
            host or "this service",
        )
    if upgrade:
        upgrade_database(settings.database_url)
    return create_app(
        database_url=settings.database_url,
        api_tokens=tokens,
        read_only_open=settings.read_only_open,
        webhook_allow=settings.webhook_allow_list,
        webhook_poll_s=settings.heartbeat_s,
    )


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory regcore.service.main:app_from_env``: settings from the env."""
    return app_from_settings(Settings())


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """Run the service with uvicorn until SIGINT/SIGTERM (uvicorn handles both)."""
    import uvicorn

    app = app_from_settings(settings, host=host)
    # Uvicorn's access log shows method, path and status, never headers (so no tokens).
    uvicorn.run(app, host=host, port=port, log_level="info")
