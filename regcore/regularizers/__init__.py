"""The regularizer core: L1/L2 penalties for PyTorch, six ways, pure torch.

``R(w) = λ₁·Σ|w| + λ₂·Σw²`` over a model's weights (every parameter with ``ndim >= 2`` by
default), applied by one of :data:`METHODS`:

============== ==== ==== ==============================================================
method         L1   L2   how
============== ==== ==== ==============================================================
weight_decay   no   yes  the optimizer's coupled decay, ``weight_decay = 2·λ₂``
decoupled      yes  yes  before the update ``p ← p − lr·(λ₁·sign p + 2λ₂·p)`` (AdamW-like)
loss           yes  yes  ``R(w)`` added to the loss (per backward)
hook           yes  yes  per-parameter post-accumulate-grad hooks (per backward)
fused          yes  yes  one in-place pass over the gradients inside the step, before the update
proximal       yes  yes  after the step, soft-thresholding with the optimizer's own step:
                         the only method that produces exact zeros
============== ==== ==== ==============================================================

:data:`METHOD_TABLE` has a row per method (:class:`MethodSpec`: λ₁ support, class, cost
rank, population kernel); :data:`METHODS`, :data:`L1_METHODS` and the functions below derive
from it. The methods implement three regularizers (:data:`CLASSES`, see :func:`method_class`):
``loss``, ``hook``, ``fused`` and ``weight_decay`` apply the penalty's gradient and train the
same model; ``decoupled`` and ``proximal`` are each their own (``decoupled`` joins the penalty
under plain SGD). Within a class only the cost differs.

Example::

    from regcore.regularizers import Regularizer, sparsity
    reg = Regularizer(model, l1=1e-4, l2=1e-3, method="proximal")  # only=["backbone.*"]
    opt = torch.optim.Adam(reg.param_groups(), lr=1e-3)
    reg.attach(opt)
    ...  # train as usual, with loss = reg.penalize(loss)
    reg.clip_grad_norm_(1.0)  # optional, between backward and step: clips the data gradient
    print(sparsity(model), reg.penalty().item())

``only=`` (name patterns) narrows the regularized parameters, ``exclude=`` removes some;
:meth:`Regularizer.clip_grad_norm_` clips the data gradient and never the penalty's, so every
method stays the same regularizer under gradient clipping.

:data:`OPTIMIZERS` is the table of optimizers a sweep may name (torch class, options, the step
``proximal`` thresholds with); the spec and the worker's training loop read it.
"""

from regcore.regularizers._base import Attachment, BaseMethod
from regcore.regularizers._decoupled import DecoupledMethod
from regcore.regularizers._fused import FusedMethod
from regcore.regularizers._hook import HookMethod
from regcore.regularizers._loss import LossMethod
from regcore.regularizers._methods import (
    CLASSES,
    DECOUPLED,
    L1_METHODS,
    METHOD_TABLE,
    METHODS,
    NO_REGULARIZER,
    PENALTY,
    PROXIMAL,
    MethodSpec,
    PopulationKernel,
    cheapest,
    group_by_class,
    method_class,
    method_spec,
)
from regcore.regularizers._metrics import l1_norm, l2_norm, sparsity
from regcore.regularizers._optimizers import (
    KNOWN_OPTIMIZERS,
    OPTIMIZERS,
    OptimizerKind,
    OptimizerName,
    StepRule,
    optimizers_taking,
    step_rule,
)
from regcore.regularizers._proximal import ProximalMethod
from regcore.regularizers._regularizer import Regularizer
from regcore.regularizers._select import default_exclude, select_parameters
from regcore.regularizers._weight_decay import WeightDecayMethod

__all__ = [
    "CLASSES",
    "DECOUPLED",
    "KNOWN_OPTIMIZERS",
    "L1_METHODS",
    "METHODS",
    "METHOD_TABLE",
    "NO_REGULARIZER",
    "OPTIMIZERS",
    "PENALTY",
    "PROXIMAL",
    "Attachment",
    "BaseMethod",
    "DecoupledMethod",
    "FusedMethod",
    "HookMethod",
    "LossMethod",
    "MethodSpec",
    "OptimizerKind",
    "OptimizerName",
    "PopulationKernel",
    "ProximalMethod",
    "Regularizer",
    "StepRule",
    "WeightDecayMethod",
    "cheapest",
    "default_exclude",
    "group_by_class",
    "l1_norm",
    "l2_norm",
    "method_class",
    "method_spec",
    "optimizers_taking",
    "select_parameters",
    "sparsity",
    "step_rule",
]
