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

from collections.abc import Callable, Mapping
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
    stopping. Let it propagate: the trial ends as PRUNED, or as interrupted; or, ``done``,
    as if the function had returned what it reported last (a path point that stopped
    improving: it has trained enough)."""

    def __init__(self, reason: str, *, pruned: bool, done: bool = False) -> None:
        super().__init__(reason)
        self.pruned = pruned
        self.done = done


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
    # A path point's start (its weights, saved by the worker) and where its own go.
    warm_from: Path | None = field(default=None, repr=False)
    warm_model: nn.Module | None = field(default=None, repr=False)

    def warm_start(self, model: nn.Module) -> nn.Module:
        """Let path mode (``sampler: {name: path}``) continue ``model`` from the weights the
        trial starts from, and hand its weights on when the trial ends. Call it once, after
        building the model and moving it to ``ctx.device``, before making the optimizer;
        a trial that is not a path's warm-started point keeps the model as it is. Declare
        the function with ``@training_function(..., warm_start=True)``."""
        if self.warm_from is not None:
            state = torch.load(self.warm_from, map_location=self.device, weights_only=True)
            model.load_state_dict(state)
        self.warm_model = model
        return model

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
    # The parameter of ctx.params that seeds its data split, if any: a confirmation varies it.
    split_param: str | None = None
    # Whether it calls ctx.warm_start(model), so that path mode can warm-start its trials.
    warm_start: bool = False

    @property
    def module(self) -> str:
        return self.function.__module__

    def __call__(self, ctx: TrialContext) -> Mapping[str, float]:
        return self.function(ctx)
