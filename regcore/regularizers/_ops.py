"""The in-place elementwise passes the methods share, and where in a step they run.

Each pass runs the way ``torch.optim`` runs its own: one multi-tensor (``torch._foreach_*``)
kernel over all tensors on an accelerator, where a kernel launch costs more than the work; on
the CPU one ``out=``/in-place operation per tensor, where torch.optim does the same (its foreach
default is for accelerators) because the per-tensor kernels are vectorized and threaded and the
foreach fallback is not (``bench/regularizers.py`` shows the difference). Temporaries
live in persistent scratch buffers: nothing parameter-sized is allocated per step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

StepPreHook = Callable[[torch.optim.Optimizer, Any, Any], "tuple[Any, Any] | None"]


def multi_tensor(tensors: list[torch.Tensor]) -> bool:
    """Whether to use ``torch._foreach_*`` for ``tensors`` (torch.optim's rule: off the CPU)."""
    return bool(tensors) and tensors[0].device.type != "cpu"


def sign_into(out: list[torch.Tensor], params: list[torch.Tensor]) -> None:
    """``out ← sign(params)`` (0 at 0: the subgradient of ``|w|`` every method uses)."""
    if multi_tensor(params):
        torch._foreach_copy_(out, params)
        torch._foreach_sign_(out)
    else:
        for p, s in zip(params, out, strict=True):
            torch.sign(p, out=s)


def add_(targets: list[torch.Tensor], sources: list[torch.Tensor], alpha: float) -> None:
    """``targets += alpha·sources``."""
    if multi_tensor(targets):
        torch._foreach_add_(targets, sources, alpha=alpha)
    else:
        for t, s in zip(targets, sources, strict=True):
            t.add_(s, alpha=alpha)


def mul_(targets: list[torch.Tensor], factor: float) -> None:
    """``targets *= factor``."""
    if multi_tensor(targets):
        torch._foreach_mul_(targets, factor)
    else:
        for t in targets:
            t.mul_(factor)


def div_(targets: list[torch.Tensor], divisor: float) -> None:
    """``targets /= divisor``."""
    if multi_tensor(targets):
        torch._foreach_div_(targets, divisor)
    else:
        for t in targets:
            t.div_(divisor)


def add_penalty_grad_(
    grads: list[torch.Tensor],
    params: list[torch.Tensor],
    signs: list[torch.Tensor],
    *,
    l1: float,
    l2x2: float,
) -> None:
    """``grads += l1·sign(params) + l2x2·params``; ``signs`` is scratch (left holding
    ``sign(params)`` when ``l1``), negative coefficients subtract."""
    if l1:
        sign_into(signs, params)
        add_(grads, signs, l1)
    if l2x2:
        add_(grads, params, l2x2)


def before_update(apply: Callable[[], None]) -> StepPreHook:
    """An optimizer step pre-hook that runs ``apply`` after the gradients of the step exist,
    right before the update.

    Called as ``opt.step()``, that is now. Called as ``opt.step(closure)`` (Lightning's
    precision plugins, LBFGS), the gradients are made *inside* the step, by the closure (which
    in Lightning also clips them): the hook hands the step a closure that runs the original
    and then ``apply``, so ``apply`` sees this step's gradients, after any clipping in the
    closure and before the update.
    """

    def hook(optimizer: torch.optim.Optimizer, args: Any, kwargs: Any) -> tuple[Any, Any] | None:
        # torch passes step's own arguments, the optimizer first: (self, closure=None).
        closure = kwargs.get("closure", args[1] if len(args) > 1 else None)
        if closure is None:
            apply()
            return None

        def closure_then_apply() -> Any:
            loss = closure()
            apply()
            return loss

        if "closure" in kwargs:
            return args, {**kwargs, "closure": closure_then_apply}
        return (args[0], closure_then_apply, *args[2:]), kwargs

    return hook
