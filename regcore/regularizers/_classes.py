"""Which methods are the same regularizer: classes of methods that apply the same update.

The six methods are implementations; for the model they train there are three regularizers:

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
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from regcore.regularizers._regularizer import L1_METHODS

PENALTY, DECOUPLED, PROXIMAL = "penalty", "decoupled", "proximal"
#: The classes, simplest first (the order a tie between them is broken in).
CLASSES: tuple[str, ...] = (PENALTY, DECOUPLED, PROXIMAL)

# Cheapest first, from the step times in shared/reference/NOTES.md (CPU, 2 cores): what a
# class runs when no cost probe has timed its methods on the sweep's own model.
_COST_ORDER = ("weight_decay", "hook", "fused", "loss", "decoupled", "proximal")


def method_class(method: str, *, optimizer: str = "adam", momentum: float | None = None) -> str:
    """The class of ``method`` under ``optimizer`` (a name of :data:`OPTIMIZERS`)."""
    if method in ("loss", "hook", "fused", "weight_decay"):
        return PENALTY
    if method == DECOUPLED:
        return PENALTY if optimizer == "sgd" and not momentum else DECOUPLED
    if method == PROXIMAL:
        return PROXIMAL
    raise ValueError(f"unknown method {method!r}; choose from {', '.join(_COST_ORDER)}")


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
    step, a cost probe's) where it timed them all, else by the order measured in NOTES.md."""
    able = [m for m in methods if not l1 or m in L1_METHODS]
    if not able:
        raise ValueError(f"none of {', '.join(methods)} can apply λ₁ = {l1:g}")
    if costs is not None and all(m in costs for m in able):
        return min(able, key=lambda m: (costs[m], _COST_ORDER.index(m)))
    return min(able, key=_COST_ORDER.index)
