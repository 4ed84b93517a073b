"""The regularizer and a trial as Hugging Face ``TrainerCallback``\\ s
(``pip install regsweep[transformers]``).

.. code-block:: python

    from regcore.integrations.transformers import Regularize, TrialCallback

    trainer = Trainer(model=model, args=TrainingArguments(..., weight_decay=0.0),
                      train_dataset=train, eval_dataset=val,
                      callbacks=[Regularize(l1=ctx.l1, l2=ctx.l2, method=ctx.method),
                                 TrialCallback(ctx)])
    trainer.train()

``Regularize`` regularizes the parameters HF's own weight decay would (every parameter but
biases and LayerNorm/RMSNorm weights: ``Trainer.get_decay_parameter_names``; ``only`` and
``exclude`` patterns as :class:`~regcore.regularizers.Regularizer`'s replace that rule) through
the trainer's optimizer, with every method. Keep ``weight_decay=0.0`` in the arguments: the
callback regularizes (a Regularizer refuses a group that would be decayed twice).

- ``fused``, ``decoupled``, ``weight_decay`` and ``proximal`` act inside the optimizer's step,
  which HF takes after it clips (``max_grad_norm``, 1.0 by default): the clip sees the data
  gradient only, as :meth:`Regularizer.clip_grad_norm_` in a plain loop. ``weight_decay``
  means coupled decay, which HF's default AdamW does not do: it is refused there (use
  ``optim="sgd"``, or ``optimizers=(torch.optim.Adam(...), None)``).
- ``loss`` adds ``R(w)`` to the loss the model returns (a forward hook, training only); HF
  then scales it for gradient accumulation with the data loss, so λ is applied once per
  optimizer step. It needs the model to compute the loss: with ``compute_loss_func`` or label
  smoothing the trainer computes its own, and the callback raises at the first step rather
  than train unregularized (use ``fused``: the same regularizer). ``hook`` adds ``λ/k`` per
  backward with ``k = gradient_accumulation_steps``.
- **Clipping with ``loss`` and ``hook``**: their penalty gradient is in ``.grad`` when HF
  clips, and HF has no callback between the last backward and its clip; so HF's clip scales
  the penalty gradient with the data's (``torch.nn.utils.clip_grad_norm_`` over everything,
  as a plain loop that clips with torch would). Set ``max_grad_norm=0`` or use ``fused`` for
  the plain loop's convention. The tests show both.
- Mixed precision: ``bf16=True`` as is; ``fp16``'s GradScaler runs the step-time methods
  after unscaling and refuses ``hook``.

``TrialCallback(ctx)`` reports each evaluation's metrics to the trial (HF logs ``eval_loss``;
it is reported as ``eval_loss`` and as ``val_loss``, or map names with ``metrics=``) and stops
training when the trial must stop: HF finishes the step it is in, then ``trainer.train()``
raises ``TrialStopped`` and the trial ends as pruned or interrupted.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from regcore.integrations._shared import Regularizers, regularizers_for, trial_metrics
from regcore.regularizers import Regularizer, method_spec
from regcore.regularizers._select import Exclude, Only
from regcore.workloads import TrialContext, TrialStopped


def hf_decay_exclude(model: nn.Module) -> Exclude:
    """Leave out what HF's weight decay leaves out: biases and normalization weights."""
    # The Trainer's own rule; it reads nothing of the Trainer it is a method of.
    decay = set(Trainer.get_decay_parameter_names(None, model))  # type: ignore[arg-type]

    def excluded(name: str, param: nn.Parameter) -> bool:
        del param
        return name not in decay

    return excluded


class Regularize(TrainerCallback):
    """``R(w) = λ₁·Σ|w| + λ₂·Σw²`` on the trainer's model, by ``method``."""

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
        self._handles: list[RemovableHandle] = []
        self._added = self._reached = self._missed = 0

    @property
    def regularizers(self) -> list[Regularizer]:
        """The Regularizers attached for the current training run."""
        return [] if self._regs is None else list(self._regs.regularizers)

    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        optimizer: Any = None,
        **kwargs: Any,
    ) -> None:
        if model is None or optimizer is None:
            raise RuntimeError("Regularize needs the trainer's model and optimizer at train begin")
        adds_to_loss = self._row.implementation.adds_to_loss
        if adds_to_loss and args.label_smoothing_factor:
            raise ValueError(
                "method='loss' adds R(w) to the loss the model returns, and with "
                f"label_smoothing_factor={args.label_smoothing_factor} the Trainer computes "
                "its own; use method='fused' (the same regularizer)"
            )
        exclude = self.exclude if self.exclude is not None else hf_decay_exclude(model)
        self._regs = Regularizers(
            model,
            l1=self.l1,
            l2=self.l2,
            method=self.method,
            only=self.only,
            exclude=exclude,
            accumulation_steps=args.gradient_accumulation_steps,
        )
        self._regs.attach([optimizer], scaler=getattr(optimizer, "scaler", None))
        if adds_to_loss:
            self._handles.append(model.register_forward_hook(self._add_penalty, with_kwargs=True))

    def _add_penalty(
        self, module: nn.Module, args: Any, kwargs: dict[str, Any], output: Any
    ) -> Any:
        if not module.training or not torch.is_grad_enabled() or self._regs is None:
            return None
        loss = output.get("loss") if isinstance(output, Mapping) else output[0]
        if loss is None:  # the Trainer took the labels to compute a loss of its own
            self._missed += 1
            return None
        with torch.autocast(device_type=loss.device.type, enabled=False):
            penalty = self._regs.penalty()
        # HF divides the loss by its accumulation steps unless the model normalized it by
        # num_items_in_batch (then the whole window's): R/k per backward either way.
        if kwargs.get("num_items_in_batch") is not None:
            penalty = penalty / self._regs.accumulation_steps
        penalty.register_hook(self._count_reached)  # type: ignore[no-untyped-call]
        self._added += 1
        if isinstance(output, MutableMapping):
            output["loss"] = loss + penalty  # ModelOutput keeps key and attribute in step
            return output
        if isinstance(output, Mapping):
            return {**output, "loss": loss + penalty}
        return (loss + penalty, *output[1:])

    def _count_reached(self, grad: torch.Tensor) -> None:
        self._reached += 1

    def on_pre_optimizer_step(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if (self._added and not self._reached) or (self._missed and not self._added):
            raise RuntimeError(
                "method='loss' adds R(w) to the loss the model returns, but the Trainer "
                "backpropagated a loss of its own (compute_loss_func, or its own "
                "compute_loss); use method='fused' (the same regularizer), which needs no loss"
            )
        self._added = self._reached = self._missed = 0

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        if self._regs is not None:
            self._regs.detach()
            self._regs = None


class TrialCallback(TrainerCallback):
    """Report each evaluation's metrics to the trial; stop training when the trial must.

    ``metrics`` maps the trial's metric names to the names HF logs where they differ
    (``{"val_acc": "eval_accuracy"}``); without it every logged number is reported under its
    own name, and each ``eval_X`` also as ``val_X``.
    """

    def __init__(self, ctx: TrialContext, *, metrics: Mapping[str, str] | None = None) -> None:
        self.ctx = ctx
        self.metrics = dict(metrics) if metrics is not None else None
        self._evaluations = 0
        self._training = False
        self._stopped: TrialStopped | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        self._training, self._evaluations, self._stopped = True, 0, None

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: Mapping[str, Any] | None = None,
        model: nn.Module | None = None,
        **kw: Any,
    ) -> None:
        if not self._training or self._stopped is not None:
            return  # trainer.evaluate() after training, or an evaluation on the way out

        if model is not None:
            for reg in regularizers_for(model):  # so the trial records their sparsity
                if reg not in self.ctx.regularizers:
                    self.ctx.regularizers.append(reg)
        # HF adds its fractional "epoch" to the metrics; the trial counts epochs itself.
        logged = {
            k: v for k, v in (metrics or {}).items() if isinstance(v, int | float) and k != "epoch"
        }
        if self.metrics is None:
            aliases = {f"val_{k[5:]}": v for k, v in logged.items() if k.startswith("eval_")}
            logged = {**aliases, **logged}
        names = list(self.metrics) if self.metrics is not None else list(logged)
        epoch, self._evaluations = self._evaluations, self._evaluations + 1
        try:
            self.ctx.report(epoch, trial_metrics(logged, names, self.metrics))
        except TrialStopped as stopped:
            self._stop(control, stopped)

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        if self._stopped is None and self.ctx.should_stop():
            self._stop(control, TrialStopped("stopped: the trial was asked to stop", pruned=False))

    def _stop(self, control: TrainerControl, stopped: TrialStopped) -> None:
        self._stopped = stopped
        control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kw: Any
    ) -> None:
        stopped, self._stopped, self._training = self._stopped, None, False
        if stopped is not None:
            raise stopped
