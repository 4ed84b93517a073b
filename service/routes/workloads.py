"""``/v1/workloads``: the workloads a spec may name, and what each takes and reports."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

from regcore.service.auth import ReaderDep
from regcore.service.errors import ERROR_RESPONSES
from regcore.workloads import TrainingFunction, available_workloads

router = APIRouter(prefix="/v1/workloads", tags=["workloads"], responses=ERROR_RESPONSES)


class WorkloadInfo(BaseModel):
    name: str
    kind: Literal["workload", "training_function"] = Field(
        description="workload: regsweep owns the loop; training_function: it owns its loop"
    )
    task: Literal["classification", "regression"] | None = Field(
        description="what a workload learns; null for a training function"
    )
    params_schema: dict[str, Any]
    metrics: list[str]
    maximize: list[str]


class WorkloadList(BaseModel):
    data: list[WorkloadInfo]
    count: int


@router.get("", response_model=WorkloadList)
def read_workloads(_caller: ReaderDep) -> WorkloadList:
    """Every registered workload: its kind, task, the JSON Schema of its params, its metrics."""
    data = [
        WorkloadInfo(
            name=name,
            kind="training_function" if isinstance(cls, TrainingFunction) else "workload",
            task=None if isinstance(cls, TrainingFunction) else cls.task,
            params_schema=cls.Params.model_json_schema(),
            metrics=list(cls.metrics),
            maximize=sorted(cls.maximize),
        )
        for name, cls in available_workloads().items()
    ]
    return WorkloadList(data=data, count=len(data))
