"""What the store hands out: frozen rows (no ORM objects, no open sessions) and errors
that say what to do.

The service maps the errors to HTTP: not found → 404, taken name and state conflicts → 409.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Self

from regcore.store._tables import FINAL_STATUSES


@dataclass(frozen=True, kw_only=True)
class SweepRow:
    id: str
    name: str
    study_name: str
    status: str
    priority: int
    spec: dict[str, Any]
    owner: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None
    cancel_requested: bool
    error: str | None
    batch_name: str | None = None
    note: str | None = None  # why it waits while no worker runs it

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, kw_only=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    device: str
    started_at: datetime
    last_heartbeat: datetime
    current_sweep_id: str | None
    current_trial_number: int | None
    status: str
    claims: int = 0
    claim_seconds: float = 0.0
    cannot_run: dict[str, str] = field(default_factory=dict)  # workload → why it cannot build it

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> Self:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["cannot_run"] = values["cannot_run"] or {}  # NULL: nothing it cannot run
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class BatchRow:
    name: str
    spec: dict[str, Any]
    owner: str | None
    deadline: datetime | None
    webhook_url: str | None
    created_at: datetime
    finished_at: datetime | None

    @classmethod
    def from_mapping(cls, row: Mapping[Any, Any]) -> Self:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


class BatchNotFoundError(LookupError):
    """No batch has that name."""


class SweepNotFoundError(LookupError):
    """No sweep has that id (or name)."""


class SweepNameTakenError(ValueError):
    """A sweep of that name exists: names are unique, they are the Optuna study names."""


class SweepStateError(ValueError):
    """The sweep is in a state that does not allow the change (running, already final)."""


class WorkerNotFoundError(LookupError):
    """No worker has that id: it never registered, deregistered, or was removed as stale."""
