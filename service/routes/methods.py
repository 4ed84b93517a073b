"""``/v1/methods``: the regularizer implementations a spec may compare."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from regcore.regularizers import L1_METHODS, METHODS
from regcore.service.auth import ReaderDep
from regcore.service.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1/methods", tags=["methods"], responses=ERROR_RESPONSES)


class MethodInfo(BaseModel):
    name: str
    # weight_decay cannot express λ₁: a sweep samples no λ₁ for it.
    supports_l1: bool
    supports_l2: bool


class MethodList(BaseModel):
    data: list[MethodInfo]
    count: int


@router.get("", response_model=MethodList)
def read_methods(_caller: ReaderDep) -> MethodList:
    """Every regularizer method, and whether it can apply an L1 penalty."""
    data = [MethodInfo(name=m, supports_l1=m in L1_METHODS, supports_l2=True) for m in METHODS]
    return MethodList(data=data, count=len(data))
