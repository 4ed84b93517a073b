"""The methods, in one table: what each is, which regularizer it implements, what it costs.

The six methods are implementations; for the model they train there are three regularizers
(:data:`CLASSES`):

============ ============================================ ==================================
class        update                                       methods
============ ============================================ ==================================
penalty      the gradient of ``R(w)`` joins the data's,   ``loss``, ``hook``, ``fused``,
             through the optimizer's preconditioner       ``weight_decay`` (λ₁ = 0 only)
decoupled    ``p ← p − lr·∇R(p)`` beside the optimizer    ``decoupled``
proximal     the proximal operator of ``R`` after a step  ``proximal``
============ ============================================ ==================================

With plain SGD (no momentum) ``decoupled`` *is* the penalty's update, so it joins ``penalty``.
Methods of one class train the same parameters (to 1e-10 in float64: the contract tests in
``tests/regcore/regularizers/test_method_classes.py``); they differ in cost only, so a sweep
samples the class and runs its cheapest method.

Everything regsweep knows about a method is a column of :data:`METHOD_TABLE`: the spec, the
Regularizer, the sweep's class sampling and the population trainer read it, so adding a method
is one row (and, for population trials, a kernel of the name its row gives).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from regcore.regularizers._base import BaseMethod
from regcore.regularizers._decoupled import DecoupledMethod
from regcore.regularizers._fused import FusedMethod
from regcore.regularizers._hook import HookMethod
from regcore.regularizers._loss import LossMethod
from regcore.regularizers._proximal import ProximalMethod
from regcore.regularizers._weight_decay import WeightDecayMethod

PENALTY: Final = "penalty"
DECOUPLED: Final = "decoupled"
PROXIMAL: Final = "proximal"
#: The classes, simplest first (the order a tie between them is broken in).
CLASSES: tuple[str, ...] = (PENALTY, DECOUPLED, PROXIMAL)
#: The class (and, for timing and tables, the method) of training without a regularizer.
NO_REGULARIZER: Final = "none"

MethodClass = Literal["penalty", "decoupled", "proximal"]
# How worker/population's stacked optimizer applies a method for K trials at once: "gradient"
# adds ∇R to the gradient before the update, "decoupled" shrinks the weights before it,
# "proximal" thresholds them after it; None: population trials cannot run the method.
PopulationKernel = Literal["gradient", "decoupled", "proximal"]


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """One method: ``name`` as a spec writes it; ``implementation``, the class the
    :class:`Regularizer` runs; ``supports_l1``, False where it can only shrink proportionally;
    ``method_class``, the regularizer it implements (``plain_sgd_class`` under SGD without
    momentum, where that differs); ``cost_rank``, its place in the cost order (0 cheapest:
    what a class runs when no cost probe timed its methods on the sweep's own model, from the
    step times measured on 2 CPU cores); ``population``, the stacked optimizer's kernel."""

    name: str
    implementation: type[BaseMethod]
    supports_l1: bool
    method_class: MethodClass
    plain_sgd_class: MethodClass | None = None
    cost_rank: int
    population: PopulationKernel | None


#: In the order the design lists them (spec, REST and reports show them so).
METHOD_TABLE: tuple[MethodSpec, ...] = (
    MethodSpec(
        name="weight_decay",
        implementation=WeightDecayMethod,
        supports_l1=False,
        method_class=PENALTY,
        cost_rank=0,
        population="gradient",
    ),
    MethodSpec(
        name="decoupled",
        implementation=DecoupledMethod,
        supports_l1=True,
        method_class=DECOUPLED,
        plain_sgd_class=PENALTY,
        cost_rank=4,
        population="decoupled",
    ),
    MethodSpec(
        name="loss",
        implementation=LossMethod,
        supports_l1=True,
        method_class=PENALTY,
        cost_rank=3,
        population="gradient",
    ),
    MethodSpec(
        name="hook",
        implementation=HookMethod,
        supports_l1=True,
        method_class=PENALTY,
        cost_rank=1,
        population="gradient",
    ),
    MethodSpec(
        name="fused",
        implementation=FusedMethod,
        supports_l1=True,
        method_class=PENALTY,
        cost_rank=2,
        population="gradient",
    ),
    MethodSpec(
        name="proximal",
        implementation=ProximalMethod,
        supports_l1=True,
        method_class=PROXIMAL,
        cost_rank=5,
        population="proximal",
    ),
)

_BY_NAME: dict[str, MethodSpec] = {row.name: row for row in METHOD_TABLE}
METHODS: tuple[str, ...] = tuple(_BY_NAME)
L1_METHODS: tuple[str, ...] = tuple(row.name for row in METHOD_TABLE if row.supports_l1)


def method_spec(method: str) -> MethodSpec:
    """The row of ``method``; ``ValueError`` naming the choices for an unknown one."""
    row = _BY_NAME.get(method)
    if row is None:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return row


def method_class(method: str, *, optimizer: str = "adam", momentum: float | None = None) -> str:
    """The class of ``method`` under ``optimizer`` (a name of :data:`OPTIMIZERS`)."""
    row = method_spec(method)
    if row.plain_sgd_class is not None and optimizer == "sgd" and not momentum:
        return row.plain_sgd_class
    return row.method_class


def group_by_class(
    methods: Iterable[str], *, optimizer: str = "adam", momentum: float | None = None
) -> dict[str, tuple[str, ...]]:
    """``methods`` by class, classes in :data:`CLASSES` order, methods in the given order."""
    grouped: dict[str, list[str]] = {}
    for method in methods:
        cls = method_class(method, optimizer=optimizer, momentum=momentum)
        grouped.setdefault(cls, []).append(method)
    return {c: tuple(grouped[c]) for c in CLASSES if c in grouped}


def cheapest(methods: Iterable[str], *, l1: float, costs: Mapping[str, float] | None = None) -> str:
    """The cheapest of ``methods`` (one class) that can apply ``l1``: by ``costs`` (ms per
    step, a cost probe's) where it timed them all, else by the table's ``cost_rank``."""
    methods = list(methods)
    able = [m for m in methods if not l1 or method_spec(m).supports_l1]
    if not able:
        raise ValueError(f"none of {', '.join(methods)} can apply λ₁ = {l1:g}")

    def rank(m: str) -> int:
        return method_spec(m).cost_rank

    if costs is not None and all(m in costs for m in able):
        return min(able, key=lambda m: (costs[m], rank(m)))
    return min(able, key=rank)
