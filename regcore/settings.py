"""The one settings class, read from the environment (prefix ``REGSWEEP_``) by entry points.

Code below the entry points takes plain keyword arguments; only ``cli.py`` (and the service's
app factory) construct :class:`Settings`.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from regcore.notify.targets import parse_allow


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGSWEEP_", extra="ignore")

    # sqlite:///FILE, or postgresql://USER:PASSWORD@HOST/DB (postgres://... is read the same)
    database_url: str = "sqlite:///regsweep.db"
    # Comma-separated name:token or name:token:role entries (ops:t0k3n:admin,alice:s3cret,
    # grafana:r3ad:read); unset = auth off. Roles: read (every GET), submit (the default:
    # read, submit, and cancel or delete its own sweeps), admin (everything, on every sweep).
    # A last :part is a role only if it is one of these names, so colons in a token are fine.
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
    # Comma-separated host names (hooks.internal, or .internal for every name under it),
    # addresses and CIDR networks that webhooks may reach although they are loopback,
    # link-local or private (refused by default: regcore.notify.targets says why).
    webhook_allow: str | None = None

    @field_validator("webhook_allow")
    @classmethod
    def _allow_list(cls, value: str | None) -> str | None:
        parse_allow((value or "").split(","))  # a bad entry fails at start, named
        return value

    @property
    def plugin_modules(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in (self.plugins or "").split(",") if m.strip())

    @property
    def webhook_allow_list(self) -> tuple[str, ...]:
        return tuple(e.strip() for e in (self.webhook_allow or "").split(",") if e.strip())
