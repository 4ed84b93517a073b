"""The regularizer and a trial as Lightning callbacks (``pip install regsweep[lightning]``).

.. code-block:: python

    from regcore.integrations.lightning import Regularize, TrialCallback

    trainer = Trainer(callbacks=[Regularize(l1=ctx.l1, l2=ctx.l2, method=ctx.method),
                                 TrialCallback(ctx)], max_epochs=ctx.epochs)
    trainer.fit(MyModule(), datamodule=MyData())

``Regularize`` regularizes the LightningModule's parameters through whatever optimizer(s)
``configure_optimizers`` returns, with every method of :data:`~regcore.regularizers.METHODS`,
as a plain loop with a :class:`~regcore.regularizers.Regularizer` would (the tests hold them
equal):

- ``fused`` and ``decoupled`` act inside the optimizer's step once the gradients exist.
  Lightning steps as ``optimizer.step(closure)`` and the closure runs the training step, the
  backward, ``on_before_optimizer_step`` and the gradient clip; so the penalty comes after
  the clip, before the update. ``proximal`` thresholds after the step; ``weight_decay`` is
  the optimizer's own decay (its param groups must keep regularized and excluded parameters
  apart, and the regularized ones at ``weight_decay=0``).
- ``loss`` adds ``R(w)`` to what ``training_step`` returns (automatic optimization only);
  ``hook`` adds its gradient per backward. Lightning divides the loss by
  ``accumulate_grad_batches``, and the hooks apply ``λ/k``: λ once per optimizer step.
- Clipping (``Trainer(gradient_clip_val=...)``, by norm or value) acts on the data gradient
  only, for every method, as :meth:`Regularizer.clip_grad_norm_` in a plain loop: for
  ``loss`` and ``hook`` the penalty gradient is taken out of ``.grad`` in
  ``on_before_optimizer_step`` (right before Lightning clips) and put back after the clip.
- Mixed precision: ``bf16-mixed`` as is; with ``16-mixed``'s GradScaler the step-time methods
  run after unscaling (not at all on a skipped step) and ``hook`` is refused.
- Gradient accumulation: λ is applied once per optimizer step. A last, shorter accumulation
  window of an epoch gets ``λ·(its backwards)/k`` from ``loss`` and ``hook``, as in a plain
  loop with ``accumulation_steps=k``.

``TrialCallback(ctx)`` reports the metrics logged by each validation epoch to the trial (the
pruner's intermediate values) and stops training when the trial must stop; the trial then
ends as pruned or interrupted. Works with ``lightning`` or ``pytorch_lightning``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from regcore.integrations._shared import (
    ClipsDataOnly,
    Regularizers,
    regularizers_for,
    trial_metrics,
)
from regcore.regularizers import Regularizer, method_spec
from regcore.regularizers._select import Exclude, Only
from regcore.workloads import TrialContext, TrialStopped

if TYPE_CHECKING:
    from lightning.pytorch import Callback as _Callback
    from lightning.pytorch import LightningModule, Trainer
else:
    # Subclass the Callback of every Lightning that is installed, so a Trainer of either
    # package (lightning.pytorch or pytorch_lightning) accepts these callbacks.
    _bases: list[type] = []
    for _package in ("lightning.pytorch", "pytorch_lightning"):
        try:
            _bases.append(__import__(_package, fromlist=["Callback"]).Callback)
        except ImportError:
            continue
    if not _bases:
        raise ImportError(
            "regcore.integrations.lightning needs Lightning: pip install 'regsweep[lightning]' "
            "(or lightning, or pytorch-lightning)"
        )
    _Callback = type("_Callback", tuple(_bases), {})
    LightningModule = Trainer = Any


class Regularize(_Callback):
    """``R(w) = λ₁·Σ|w| + λ₂·Σw²`` on the LightningModule's parameters, by ``method``.

    Keyword arguments as :class:`~regcore.regularizers.Regularizer`: ``only``/``exclude``
    choose the parameters by name pattern (default: every parameter with ``ndim >= 2``).
    """

    def __init__(
        self,
        l1: float = 0.0,
        l2: float = 0.0,
        method: str = "fused",
        *,
        only: Only = None,
        exclude: Exclude = None,
    ) -> None:
        self._row = method_spec(method)
        self.l1, self.l2, self.method = l1, l2, method
        self.only, self.exclude = only, exclude
        self._regs: Regularizers | None = None
        self._clip: ClipsDataOnly | None = None
        self._wrapped: LightningModule | None = None

    @property
    def regularizers(self) -> list[Regularizer]:
        """The Regularizers attached for the current fit (one per optimizer)."""
        return [] if self._regs is None else list(self._regs.regularizers)

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        implementation = self._row.implementation
        if implementation.adds_to_loss and not pl_module.automatic_optimization:
            raise ValueError(
                "method='loss' adds R(w) to what training_step returns, which manual "
                "optimization never backpropagates; use method='fused' (the same regularizer)"
                " or call reg.penalize(loss) in your training_step"
            )
        self._regs = Regularizers(
            pl_module,
            l1=self.l1,
            l2=self.l2,
            method=self.method,
            only=self.only,
            exclude=self.exclude,
            accumulation_steps=trainer.accumulate_grad_batches,
        )
        scaler = getattr(trainer.precision_plugin, "scaler", None)
        regs = self._regs.attach(trainer.optimizers, scaler=scaler)
        if implementation.adds_to_loss:
            self._wrap_training_step(pl_module, self._regs)
        if implementation.per_backward and trainer.gradient_clip_val and regs:
            self._clip = ClipsDataOnly(self._regs)

    def _wrap_training_step(self, pl_module: LightningModule, regs: Regularizers) -> None:
        original = pl_module.training_step

        @functools.wraps(original)
        def training_step(*args: Any, **kwargs: Any) -> Any:
            output = original(*args, **kwargs)
            if output is None:  # the step skipped this batch
                return output
            # Lightning divides what this returns by accumulate_grad_batches: R/k per backward.
            device = next(iter(pl_module.parameters())).device.type
            with torch.autocast(device_type=device, enabled=False):
                penalty = regs.penalty()
            if isinstance(output, Mapping):
                return {**output, "loss": output["loss"] + penalty}
            return output + penalty

        pl_module.training_step = training_step  # type: ignore[method-assign]
        self._wrapped = pl_module

    def on_before_optimizer_step(
        self, trainer: Trainer, pl_module: LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if self._clip is not None:
            self._clip.take_out()

    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self._clip is not None:
            self._clip.remove()
            self._clip = None
        if self._regs is not None:
            self._regs.detach()
            self._regs = None
        if self._wrapped is not None:
            del self._wrapped.training_step  # the class's own again
            self._wrapped = None


class TrialCallback(_Callback):
    """Report each validation epoch's metrics to the trial; stop when the trial must.

    ``metrics`` maps the trial's metric names to the names the module logs where they
    differ (``{"val_loss": "valid/loss"}``); without it every logged metric is reported under
    its own name. A pruned or stopped trial stops the trainer: ``TrialStopped`` propagates
    out of ``trainer.fit`` (after Lightning's own clean-up for an exception), and the trial
    ends as pruned or interrupted.
    """

    def __init__(self, ctx: TrialContext, *, metrics: Mapping[str, str] | None = None) -> None:
        self.ctx = ctx
        self.metrics = dict(metrics) if metrics is not None else None

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        for reg in regularizers_for(pl_module):  # so the trial records their sparsity
            if reg not in self.ctx.regularizers:
                self.ctx.regularizers.append(reg)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking:
            return
        logged = trainer.callback_metrics
        names = list(self.metrics) if self.metrics is not None else list(logged)
        values = trial_metrics(logged, names, self.metrics)
        try:
            self.ctx.report(trainer.current_epoch, values)
        except TrialStopped:
            trainer.should_stop = True
            raise

    def on_train_batch_end(
        self,
        trainer: Trainer,
        pl_module: LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.ctx.should_stop():
            trainer.should_stop = True
            raise TrialStopped("stopped: the trial was asked to stop", pruned=False)
