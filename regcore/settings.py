"""The one settings class, read from the environment (prefix ``REGSWEEP_``) by entry points.

Code below the entry points takes plain keyword arguments; only ``cli.py`` (and the service's
app factory) construct :class:`Settings`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGSWEEP_", extra="ignore")

    database_url: str = "sqlite:///regsweep.db"
    # Comma-separated name:token pairs (alice:s3cret,nightly:t0k3n); unset = auth off.
    api_tokens: str | None = Field(default=None, repr=False)
    # With tokens set: let GET calls through without one (submitting still needs a token).
    read_only_open: bool = False
    data_dir: Path = Path("data")
    artifact_dir: Path = Path("artifacts")
    heartbeat_s: float = Field(default=10.0, gt=0)
    grace_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    # Unset: the client commands ask http://127.0.0.1:8000, and status, report and export
    # read DATABASE_URL itself.
    service_url: str | None = None
    token: str | None = Field(default=None, repr=False)
    # Comma-separated modules every process that reads specs imports at start (your own
    # workloads and training functions register themselves when imported).
    plugins: str | None = None

    @property
    def plugin_modules(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in (self.plugins or "").split(",") if m.strip())
