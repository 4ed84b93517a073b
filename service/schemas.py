"""Response bodies of ``/v1/sweeps`` (the OpenAPI schema clients and schemathesis check).

Times are timezone-aware UTC. Trial states and counts use Optuna's state names
(``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ``WAITING``), so ``TrialState[name]``
reads them back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, Field

from regcore.store import SWEEP_STATUSES, SweepRow

SweepStatus = Literal["queued", "running", "completed", "cancelled", "failed", "deadline_reached"]
TrialStateName = Literal["RUNNING", "COMPLETE", "PRUNED", "FAIL", "WAITING"]
if set(get_args(SweepStatus)) != set(SWEEP_STATUSES):  # pragma: no cover - a dev's reminder
    raise ImportError(f"service.schemas.SweepStatus must list exactly {SWEEP_STATUSES}")


class SweepOut(BaseModel):
    """A sweep as listed: where it is in its life and who submitted it."""

    id: str
    name: str
    status: SweepStatus
    priority: int
    owner: str | None = Field(description="name of the token that submitted it")
    study_name: str = Field(description="the Optuna study (what optuna-dashboard shows)")
    cancel_requested: bool
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None

    @classmethod
    def of(cls, row: SweepRow) -> SweepOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


class SweepPage(BaseModel):
    data: list[SweepOut]
    count: int = Field(description="sweeps matching the filter, on every page")


class TrialOut(BaseModel):
    number: int
    state: TrialStateName
    params: dict[str, Any]
    values: list[float | None] | None = Field(description="null where not finite")
    user_attrs: dict[str, Any]
    started_at: datetime | None
    completed_at: datetime | None
    duration_s: float | None


class TrialPage(BaseModel):
    data: list[TrialOut]
    count: int


class Progress(BaseModel):
    finished: int = Field(description="trials that used budget and ended")
    running: int
    n_trials: int = Field(description="the spec's budget.n_trials")
    fraction: float = Field(ge=0, le=1)


class SweepDetail(SweepOut):
    """A sweep with its spec and what its study has found so far."""

    spec: dict[str, Any]
    trials: dict[str, int] = Field(description="trials by Optuna state")
    progress: Progress
    best: TrialOut | None = Field(description="single objective: the best COMPLETE trial")
    pareto: list[TrialOut] | None = Field(description="two objectives: the Pareto front")


class WorkerOut(BaseModel):
    id: str
    host: str
    pid: int
    device: str
    status: Literal["idle", "busy", "stopping"]
    started_at: datetime
    last_heartbeat: datetime
    current_sweep_id: str | None
    current_trial_number: int | None


class WorkerList(BaseModel):
    data: list[WorkerOut]
    count: int
