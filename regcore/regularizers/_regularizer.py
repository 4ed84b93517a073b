from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from regcore.regularizers._base import Attachment
from regcore.regularizers._clip import clip_data_gradient_
from regcore.regularizers._methods import L1_METHODS, method_spec
from regcore.regularizers._metrics import l1_norm, l2_norm, sparsity
from regcore.regularizers._scratch import ScratchBuffers
from regcore.regularizers._select import Exclude, Only, select_parameters


def _check_coefficient(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, but got {value!r}")
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, but got {name}={value}")
    return value


class Regularizer:
    """``R(w) = λ₁·Σ|w| + λ₂·Σw²`` over a model's weights, applied by one of :data:`METHODS`.

    Use it in your own training loop::

        reg = Regularizer(model, l1=1e-4, l2=1e-3, method="proximal")
        opt = torch.optim.Adam(reg.param_groups(), lr=1e-3)
        reg.attach(opt)
        for x, y in loader:
            opt.zero_grad()
            loss = reg.penalize(criterion(model(x), y))  # adds R(w) only for method="loss"
            loss.backward()
            opt.step()
        reg.penalty()   # R(w) now, a tensor, for any method
        reg.detach()    # every hook removed; the pair trains as if never regularized

    ``exclude`` picks the parameters left alone: by default those with ``ndim < 2`` (biases,
    normalization weights); or a list of name patterns (``["*.bias", "embed.*"]``), or a
    predicate ``(name, param) -> bool``. Patterns or a predicate replace the default rule.

    ``only`` (a list of name patterns, ``["backbone.*"]``) regularizes just the parameters whose
    names match one of them, minus those ``exclude`` removes. With ``exclude=None`` the default
    rule still applies, so ``only=["backbone.*"]`` regularizes the backbone's weights and not
    its biases or norms; add ``exclude=[]`` to take those too. A pattern that selects no
    trainable parameter (or only ones ``exclude`` removes) is refused. Parameters outside
    ``only`` still train: they are in the excluded group of :meth:`param_groups`. Frozen
    parameters are never regularized.

    ``accumulation_steps=k``: with ``k`` gradient-accumulation micro-steps per optimizer step,
    the methods that act per ``backward()`` (``loss``, ``hook``) apply ``λ/k`` each time, so every
    method applies ``λ`` once per step. The others act in the step and need nothing.

    Mixed precision: pass the ``GradScaler`` to :meth:`attach`. ``fused``, ``decoupled``,
    ``proximal`` and ``weight_decay`` act inside ``scaler.step`` (after unscaling; not at all on a
    skipped step); ``loss`` is scaled with the loss. ``hook`` would add unscaled λ to scaled
    gradients, so it is refused with an enabled scaler.

    Gradient clipping: call :meth:`clip_grad_norm_` in place of
    ``torch.nn.utils.clip_grad_norm_``; it clips the data loss's gradient and never the
    penalty's, whichever method applies the penalty.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        l1: float = 0.0,
        l2: float = 0.0,
        method: str = "fused",
        exclude: Exclude = None,
        only: Only = None,
        accumulation_steps: int = 1,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, but got {type(model).__name__}")
        l1 = _check_coefficient("l1", l1)
        l2 = _check_coefficient("l2", l2)
        row = method_spec(method)
        if l1 > 0 and not row.supports_l1:
            raise ValueError(
                f"method={method!r} cannot express an L1 penalty (it only shrinks "
                f"proportionally), but got l1={l1}; use one of {', '.join(L1_METHODS)}, "
                f"or l1=0"
            )
        if isinstance(accumulation_steps, bool) or not isinstance(accumulation_steps, int):
            raise TypeError(f"accumulation_steps must be an int, but got {accumulation_steps!r}")
        if accumulation_steps < 1:
            raise ValueError(f"accumulation_steps must be >= 1, but got {accumulation_steps=}")

        if isinstance(only, Iterator):
            only = list(only)  # kept as self.only: a generator would be spent by then
        regularized, excluded = select_parameters(model, exclude, only=only)
        self.model = model
        self.l1 = l1
        self.l2 = l2
        self.method = method
        self.exclude = exclude
        self.only = only
        self.accumulation_steps = accumulation_steps
        self.named_parameters = regularized
        self.parameters: list[torch.Tensor] = [p for _, p in regularized]
        self._excluded: list[torch.Tensor] = [p for _, p in excluded]
        # Every trainable parameter in the model's own order, so clipping sums the per-tensor
        # norms in the order torch.nn.utils.clip_grad_norm_(model.parameters()) does.
        chosen = {id(p) for _, p in (*regularized, *excluded)}
        self._trainable: list[torch.Tensor] = [p for p in model.parameters() if id(p) in chosen]
        self._clip_scratch = ScratchBuffers()
        self._method = row.implementation(l1=l1, l2=l2, params=self.parameters)
        self._optimizer: torch.optim.Optimizer | None = None
        self._handles: list[RemovableHandle] = []
        self._decay_groups: list[dict[str, Any]] = []

    def __repr__(self) -> str:
        return (
            f"Regularizer(l1={self.l1:g}, l2={self.l2:g}, method={self.method!r}, "
            f"regularized={len(self.parameters)} tensors, excluded={len(self._excluded)})"
        )

    # -- setting up --------------------------------------------------------------------------

    def param_groups(self, **group_options: Any) -> list[dict[str, Any]]:
        """Optimizer param groups: the regularized parameters and the excluded ones.

        Each group sets ``weight_decay`` explicitly (``2·λ₂`` on the regularized group for
        method ``weight_decay``, else 0), so an optimizer whose default decay is not zero
        (AdamW's 0.01) cannot regularize twice. ``group_options`` are added to both groups.
        """
        decay = self._method.optimizer_weight_decay()
        groups = [
            {**group_options, "params": self.parameters, "weight_decay": decay},
            {**group_options, "params": self._excluded, "weight_decay": 0.0},
        ]
        return [g for g in groups if g["params"]]

    def attach(
        self, optimizer: torch.optim.Optimizer, *, scaler: torch.amp.GradScaler | None = None
    ) -> Regularizer:
        """Start regularizing the parameters ``optimizer`` updates. Returns ``self``."""
        if self._optimizer is not None:
            raise RuntimeError(
                "this Regularizer is already attached to an optimizer; call reg.detach() "
                "before attaching it again"
            )
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                f"attach expects a torch.optim.Optimizer, but got {type(optimizer).__name__}"
            )
        if scaler is not None and scaler.is_enabled() and self.method == "hook":
            raise ValueError(
                "method='hook' adds λ to gradients as they are accumulated, which under a "
                "GradScaler are still scaled; use method='fused' (it runs after "
                "scaler.unscale_) or method='loss'"
            )
        self._method.check_optimizer(optimizer)
        groups = self._match_groups(optimizer)
        scale = 1.0 / self.accumulation_steps if self._method.per_backward else 1.0
        attachment = Attachment(optimizer=optimizer, groups=groups, scale=scale)
        self._handles = self._method.attach(attachment)
        self._optimizer = optimizer
        return self

    def _match_groups(
        self, optimizer: torch.optim.Optimizer
    ) -> list[tuple[dict[str, Any], list[torch.Tensor]]]:
        model_params = {id(p) for p in self.model.parameters()}
        regularized = {id(p) for p in self.parameters}
        decay = self._method.optimizer_weight_decay()
        matched = []
        for index, group in enumerate(optimizer.param_groups):
            params = group["params"]
            foreign = [p for p in params if id(p) not in model_params]
            if foreign:
                raise ValueError(
                    f"optimizer param group {index} holds {len(foreign)} tensor(s) that are not "
                    f"parameters of the model this Regularizer was built for; build the "
                    f"optimizer from reg.param_groups() or from that model's parameters"
                )
            mine = [p for p in params if id(p) in regularized]
            weight_decay = float(group.get("weight_decay", 0.0))
            expected = decay if mine else 0.0
            if decay and mine and len(mine) != len(params):
                raise ValueError(
                    f"optimizer param group {index} mixes regularized and excluded parameters, "
                    f"but method='weight_decay' decays whole groups; build the optimizer from "
                    f"reg.param_groups()"
                )
            if weight_decay != expected and not (decay and mine and weight_decay == 0.0):
                raise ValueError(
                    f"optimizer param group {index} has weight_decay={weight_decay:g}, but "
                    f"method={self.method!r} with l2={self.l2:g} needs {expected:g} there "
                    f"(otherwise the weights are regularized twice); build the optimizer "
                    f"from reg.param_groups() or pass weight_decay=0"
                )
            matched.append((group, mine))
        if decay:
            # The optimizer itself regularizes: set the decay (detach takes it away again).
            self._decay_groups = [group for group, mine in matched if mine]
            for group in self._decay_groups:
                group["weight_decay"] = decay
        return matched

    def detach(self) -> None:
        """Remove every hook (and the decay ``attach`` set); training goes on unregularized."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        for group in self._decay_groups:
            group["weight_decay"] = 0.0
        self._decay_groups = []
        self._optimizer = None

    # -- in the training loop ----------------------------------------------------------------

    def penalize(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss to backpropagate: ``loss + R(w)`` for method ``loss``, else ``loss``."""
        if not self._method.adds_to_loss:
            if self._optimizer is None:
                raise RuntimeError(
                    f"method={self.method!r} acts through the optimizer, and this Regularizer "
                    f"is not attached to one; call reg.attach(optimizer) before training"
                )
            return loss
        return loss + self.penalty() / self.accumulation_steps

    def penalty(self) -> torch.Tensor:
        """``R(w)`` now, as a differentiable tensor (0 when nothing is regularized)."""
        if not self.parameters:
            return torch.zeros(())
        total = self.parameters[0].new_zeros(())
        if self.l1:
            # The L1 norm's backward is sign(w), the subgradient every other method uses.
            total = total + self.l1 * torch.stack(torch._foreach_norm(self.parameters, 1)).sum()
        if self.l2:
            # w·w by dot: its backward is w + w = 2w exactly, with no w² temporary.
            squares = [torch.dot(p.reshape(-1), p.reshape(-1)) for p in self.parameters]
            total = total + self.l2 * torch.stack(squares).sum()
        return total

    def clip_grad_norm_(self, max_norm: float, norm_type: float = 2.0) -> torch.Tensor:
        """Clip the gradient of the data loss to ``max_norm``, never the penalty's gradient.

        Use it in place of ``torch.nn.utils.clip_grad_norm_``, once per optimizer step: after
        the last ``backward()`` (all ``accumulation_steps`` micro-steps) and before
        ``optimizer.step()``; with a ``GradScaler``, after ``scaler.unscale_(optimizer)``::

            loss.backward()
            scaler.unscale_(opt)         # mixed precision only: clip unscaled gradients
            reg.clip_grad_norm_(1.0)
            scaler.step(opt)             # or opt.step()

        Returns the total ``norm_type``-norm of the data gradient before clipping, over every
        trainable parameter with a gradient (regularized and excluded, as torch's clip over
        ``model.parameters()`` takes them).

        The convention: clipping acts on the data loss's gradient only; the penalty's gradient
        ``λ₁·sign w + 2λ₂·w`` is never clipped, whichever method applies it (the ``_clip``
        module says why and how: for ``loss`` and ``hook``, whose penalty gradient is in
        ``.grad``, ``g ← c·(g − p) + p``). For the step-time methods, and with ``l1 = l2 = 0``,
        it *is* ``torch.nn.utils.clip_grad_norm_(trainable parameters, max_norm, norm_type)``.
        """
        in_grad = self._method.adds_to_loss or (
            self._method.per_backward and self._optimizer is not None
        )
        return clip_data_gradient_(
            self._trainable,
            [p for p in self.parameters if p.grad is not None] if in_grad else [],
            l1=self.l1,
            l2=self.l2,
            scratch=self._clip_scratch,
            max_norm=max_norm,
            norm_type=norm_type,
        )

    # -- metrics -------------------------------------------------------------------------------

    def sparsity(self, *, tol: float = 0.0) -> float:
        """Fraction of the regularized weights with ``|w| <= tol``."""
        return sparsity(self.parameters, tol=tol)

    def l1_norm(self) -> float:
        """``Σ|w|`` over the regularized weights."""
        return l1_norm(self.parameters)

    def l2_norm(self) -> float:
        """``sqrt(Σw²)`` over the regularized weights."""
        return l2_norm(self.parameters)
