"""``/v1/workloads``: the workloads a spec may name, and what each takes and reports."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel

from regcore.workloads import available_workloads
from service.auth import ReaderDep
from service.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/workloads", tags=["workloads"], responses=ERROR_RESPONSES)


class WorkloadInfo(BaseModel):
    name: str
    task: Literal["classification", "regression"]
    params_schema: dict[str, Any]
    metrics: list[str]
    maximize: list[str]


class WorkloadList(BaseModel):
    data: list[WorkloadInfo]
    count: int


@router.get("", response_model=WorkloadList)
def read_workloads(_caller: ReaderDep) -> WorkloadList:
    """Every registered workload: its task, the JSON Schema of its params and its metrics."""
    data = [
        WorkloadInfo(
            name=name,
            task=cls.task,
            params_schema=cls.Params.model_json_schema(),
            metrics=list(cls.metrics),
            maximize=sorted(cls.maximize),
        )
        for name, cls in available_workloads().items()
    ]
    return WorkloadList(data=data, count=len(data))
