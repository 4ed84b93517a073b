"""Response bodies of ``/v1/sweeps`` (the OpenAPI schema clients and schemathesis check).

Times are timezone-aware UTC. Trial states and counts use Optuna's state names
(``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ``WAITING``), so ``TrialState[name]``
reads them back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, RootModel

from regcore.store import SWEEP_STATUSES, SweepRow

SweepStatus = Literal["queued", "running", "completed", "cancelled", "failed", "deadline_reached"]
TrialStateName = Literal["RUNNING", "COMPLETE", "PRUNED", "FAIL", "WAITING"]
if set(get_args(SweepStatus)) != set(SWEEP_STATUSES):  # pragma: no cover - a dev's reminder
    raise ImportError(f"regcore.service.schemas.SweepStatus must list exactly {SWEEP_STATUSES}")


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
    note: str | None = Field(
        description="why it waits while no worker runs it (a worker cannot build its workload)"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None

    @classmethod
    def of(cls, row: SweepRow) -> SweepOut:
        return cls(**{name: getattr(row, name) for name in cls.model_fields})


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


class TrialRecord(BaseModel):
    """One trial as a flat record (``format=json``): these columns, then ``value_*`` (one per
    objective), ``params_*`` and ``attrs_*`` (null where a trial has none)."""

    model_config = ConfigDict(extra="allow")

    number: int
    state: TrialStateName
    datetime_start: str | None = Field(description="ISO 8601, UTC")
    datetime_complete: str | None = Field(description="ISO 8601, UTC")
    duration_s: float | None


class TrialsAnswer(RootModel[TrialPage | list[TrialRecord]]):
    """A page of trials; with ``format=json``, every trial as a flat record."""


class Progress(BaseModel):
    finished: int = Field(description="trials that used budget and ended")
    running: int
    n_trials: int = Field(description="the spec's budget.n_trials")
    fraction: float = Field(ge=0, le=1)


class SweepListItem(SweepOut):
    """A sweep as listed, with how far it got (what ``regsweep status`` shows)."""

    progress: Progress


class SweepPage(BaseModel):
    data: list[SweepListItem]
    count: int = Field(description="sweeps matching the filter, on every page")


class FailureCount(BaseModel):
    reason: str = Field(description="a failed trial's fail_reason, without where it was raised")
    trials: int = Field(description="trials that failed for it")


class SettingOut(BaseModel):
    """A setting the confirmation trained again on new seeds."""

    label: str = Field(description='"best", "#2", …, or "baseline (λ=0)" for a λ = 0 twin')
    source: int | None = Field(description="the search trial it repeats (null: a twin)")
    method: str
    method_class: str
    l1: float
    l2: float
    lr: float | None
    params: dict[str, Any] = Field(description="its other searched values")
    mean: float | None
    sd: float | None
    n: int = Field(description="seeds that finished")
    wins: int | None = Field(description="seeds on which it beat its λ = 0 twin")
    pairs: int | None = Field(description="seeds it and its twin both finished")
    p: float | None = Field(description="one-sided paired t-test against its twin, Holm-adjusted")
    paste: list[str] = Field(description="lines for a training script")


class DecisionOut(BaseModel):
    """What the confirmation decided (see the README's "Deciding λ")."""

    verdict: str
    beats_baseline: bool
    pending: int = Field(description="confirmation trials still to run")
    recommended: SettingOut | None
    settings: list[SettingOut]


class SweepDetail(SweepListItem):
    """A sweep with its spec and what its study has found so far."""

    spec: dict[str, Any]
    trials: dict[str, int] = Field(description="the search's trials by Optuna state")
    confirmation_trials: dict[str, int] = Field(
        description="the confirmation's trials by Optuna state (they run after the search)"
    )
    failures: list[FailureCount] = Field(
        description="why trials failed, most common first (5 reasons, then 'other reasons')"
    )
    best: TrialOut | None = Field(
        description="single objective: the search's best trial trained from scratch (one seed)"
    )
    pareto: list[TrialOut] | None = Field(description="two objectives: the Pareto front")
    decision: DecisionOut | None = Field(
        description="the confirmation's verdict and recommendation; null without one"
    )


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
    claims: int = Field(description="trials this worker has claimed since it started")
    claim_seconds: float = Field(description="seconds those claims took in all")
    cannot_run: dict[str, str] = Field(
        description="workloads it cannot build (plug-in missing, another version), and why: "
        "their sweeps are left to workers that can"
    )


class WorkerList(BaseModel):
    data: list[WorkerOut]
    count: int


class BatchEstimate(BaseModel):
    """Whether a batch fits before its deadline with the workers registered now."""

    workers: int = Field(description="workers registered when the batch was submitted")
    trials: int = Field(description="trials of all the batch's sweeps")
    trial_seconds: dict[str, float | None] = Field(
        description="per workload: median wall time of its past trials (null: never run)"
    )
    needed_s: float | None = Field(description="trial time of the known workloads ÷ workers")
    available_s: float | None = Field(description="seconds from now to the deadline")
    fits: bool | None = Field(description="null when it cannot be told")
    warnings: list[str]


class BatchSweep(SweepOut):
    """A sweep of a batch, with how far it got and the best it found."""

    workload: str
    progress: Progress
    best_value: float | None
    best_method: str | None
    best_l1: float | None
    best_l2: float | None
    estimated_finish: datetime | None = Field(
        description="finished_at once final; else extrapolated from its trials so far"
    )


class BatchOut(BaseModel):
    name: str
    owner: str | None
    deadline: datetime | None
    created_at: datetime
    finished_at: datetime | None = Field(description="when its last sweep ended")
    status: dict[str, int] = Field(description="its sweeps by status")
    sweeps: list[BatchSweep]


class BatchCreated(BatchOut):
    estimate: BatchEstimate
