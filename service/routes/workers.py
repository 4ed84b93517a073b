"""``/v1/workers``: the worker processes alive now, and what each is running."""

from __future__ import annotations

from fastapi import APIRouter

from regcore.service.auth import ReaderDep
from regcore.service.deps import EngineDep
from regcore.service.errors import ERROR_RESPONSES
from regcore.service.schemas import WorkerList, WorkerOut
from regcore.store import list_workers

router = APIRouter(prefix="/v1/workers", tags=["workers"], responses=ERROR_RESPONSES)


@router.get("")
def read_workers(_caller: ReaderDep, engine: EngineDep) -> WorkerList:
    """Registered workers: host, device, start, last heartbeat and current trial."""
    rows = list_workers(engine)
    data = [WorkerOut(**{name: getattr(r, name) for name in WorkerOut.model_fields}) for r in rows]
    return WorkerList(data=data, count=len(data))
