"""What a worker runs with, read from the settings in one place."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from regcore.settings import Settings

_SETTINGS = Settings.model_fields  # the settings' defaults are the options' defaults


@dataclass(frozen=True, kw_only=True)
class WorkerOptions:
    """What a worker runs with: :meth:`from_settings` reads them from ``REGSWEEP_*``, for
    ``regsweep worker``, ``serve --with-worker`` and ``run`` alike."""

    database_url: str
    device: str = "auto"  # auto: the spec's training.device
    data_dir: Path | None = None
    artifact_dir: Path | None = None  # where the best trials' weights go (optuna.artifacts)
    heartbeat_s: float = _SETTINGS["heartbeat_s"].default
    grace_s: float = _SETTINGS["grace_s"].default
    max_retries: int = _SETTINGS["max_retries"].default
    idle_poll_s: float = 1.0
    pool_size: int = 2  # connections to PostgreSQL, all the worker's threads together
    sweep_id: str | None = None  # work on this sweep alone, and exit once it has ended
    stop_wait_s: float | None = None  # how long a stop lets the running trial go on (grace_s)
    threads: int | None = None  # torch's intra-op threads (None: a share of the cores)
    # Worker processes started together on this machine (--workers N, --gpus all, run
    # --workers N): each takes at most cores ÷ this many threads (regcore.worker.threads).
    started_with: int = 1
    log_level: int = logging.INFO
    plugins: tuple[str, ...] = ()  # modules imported first: their workloads (REGSWEEP_PLUGINS)
    # Hosts and networks webhooks may reach though loopback, link-local or private
    # (REGSWEEP_WEBHOOK_ALLOW).
    webhook_allow: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, **changes: Any) -> WorkerOptions:
        """The options ``settings`` give a worker (the one place they are read), with
        ``changes`` (a device, a sweep to work on alone) on top."""
        read = cls(
            database_url=settings.database_url,
            data_dir=settings.data_dir,
            artifact_dir=settings.artifact_dir,
            heartbeat_s=settings.heartbeat_s,
            grace_s=settings.grace_s,
            max_retries=settings.max_retries,
            plugins=settings.plugin_modules,
            webhook_allow=settings.webhook_allow_list,
        )
        return replace(read, **changes)
