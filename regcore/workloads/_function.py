"""Training functions: workloads that own their training loop.

.. code-block:: python

    from regcore.workloads import TrialContext, training_function

    @training_function(name="my_cnn", metrics=("val_loss", "val_top3"), maximize=("val_top3",))
    def train(ctx: TrialContext) -> dict[str, float]:
        model = build(width=ctx.params["width"]).to(ctx.device)
        reg = ctx.regularizer(model)          # the trial's λ₁, λ₂ and method
        opt = torch.optim.AdamW(reg.param_groups(), lr=ctx.lr)
        reg.attach(opt)
        for epoch in range(ctx.epochs):
            ...                               # your loop, loaders, schedule, AMP
            ctx.report(epoch, {"val_loss": v, "val_top3": t})   # raises when it must end
        return {"val_loss": v, "val_top3": t}

A spec names it like any workload (``workload: {name: my_cnn}``); the worker runs it in a
child process, so whatever it does can fail only its own trial. After it returns, the
sparsity and norms of the model given to :meth:`TrialContext.regularizer` are recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from regcore.regularizers import Regularizer


class TrialStopped(Exception):
    """Raised by :meth:`TrialContext.report` when the trial must end now: the pruner stopped
    it (``pruned``), or its sweep was cancelled, reached its deadline, or its worker is
    stopping. Let it propagate: the trial ends as PRUNED, or as interrupted."""

    def __init__(self, reason: str, *, pruned: bool) -> None:
        super().__init__(reason)
        self.pruned = pruned


class AnyParams(BaseModel):
    """The parameters of a training function that declares no model: anything goes."""

    model_config = ConfigDict(extra="allow", frozen=True)


@dataclass(kw_only=True)
class TrialContext:
    """One trial, as a training function sees it.

    ``params`` is the spec's ``workload.params`` merged with the trial's searched
    ``search_space.params`` (validated by the function's ``params`` model, if it has one).
    """

    l1: float
    l2: float
    method: str
    lr: float
    epochs: int
    seed: int
    device: torch.device
    params: dict[str, Any]
    data_dir: Path | None
    number: int
    # The spec's `regularize` section: the Regularizer's default exclude/only.
    regularize: dict[str, Any] = field(default_factory=dict)
    _report: Callable[[int, dict[str, float]], None] = field(default=lambda e, m: None, repr=False)
    _should_stop: Callable[[], bool] = field(default=lambda: False, repr=False)
    history: list[dict[str, float]] = field(default_factory=list, repr=False)
    regularizers: list[Regularizer] = field(default_factory=list, repr=False)

    def regularizer(self, model: nn.Module, **kwargs: Any) -> Regularizer:
        """A :class:`~regcore.regularizers.Regularizer` for ``model`` with this trial's λ₁, λ₂
        and method; ``kwargs`` (``exclude``, ``only``, ``accumulation_steps``) override the
        spec's ``regularize`` section."""
        options = {k: v for k, v in self.regularize.items() if v is not None}
        reg = Regularizer(
            model, l1=self.l1, l2=self.l2, method=self.method, **{**options, **kwargs}
        )
        self.regularizers.append(reg)
        return reg

    def report(self, epoch: int, metrics: Mapping[str, float]) -> None:
        """Record ``metrics`` after ``epoch`` (0-based): the first objective is the pruner's
        intermediate value. Raises :class:`TrialStopped` when the trial must end."""
        values = {str(k): float(v) for k, v in metrics.items()}
        self.history.append({"epoch": float(epoch), **values})
        self._report(epoch, values)

    def should_stop(self) -> bool:
        """Whether the trial is asked to end (cancel, deadline, the worker stopping); for
        loops that check between reports. :meth:`report` raises for it anyway."""
        return self._should_stop()


TrainFn = Callable[[TrialContext], Mapping[str, float]]


@dataclass(frozen=True, kw_only=True)
class TrainingFunction:
    """A registered training function; calling it calls the function."""

    name: str
    function: TrainFn
    metrics: tuple[str, ...]
    maximize: frozenset[str]
    Params: type[BaseModel]

    @property
    def module(self) -> str:
        return self.function.__module__

    def __call__(self, ctx: TrialContext) -> Mapping[str, float]:
        return self.function(ctx)


def training_function(
    *,
    name: str,
    metrics: Sequence[str],
    maximize: Iterable[str] = (),
    params: type[BaseModel] | None = None,
) -> Callable[[TrainFn], TrainingFunction]:
    """Register the decorated function as the workload ``name`` reporting ``metrics``
    (larger is better for those in ``maximize``); ``params``: a pydantic model that checks
    ``ctx.params`` (its problems show in ``regsweep validate``)."""
    from regcore.workloads._registry import register_workload

    metrics, maximize = tuple(metrics), frozenset(maximize)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", name):
        raise ValueError(
            f"name a training function like a workload (e.g. my_cnn), but got {name!r}"
        )
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ValueError(f"metrics must name what the function returns, but got {metrics!r}")
    if not maximize <= set(metrics):
        raise ValueError(f"maximize {sorted(maximize - set(metrics))} are not in metrics {metrics}")
    if params is not None and not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise TypeError(f"params must be a pydantic model class, but got {params!r}")

    def register(function: TrainFn) -> TrainingFunction:
        registered = TrainingFunction(
            name=name,
            function=function,
            metrics=metrics,
            maximize=maximize,
            Params=params or AnyParams,
        )
        register_workload(registered)
        return registered

    return register
