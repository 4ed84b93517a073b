"""After which epochs a trial reports to its sweep's pruner: those where the pruner may
decide, and no others.

Each report is a write to the database (``trial.report``), and asking the pruner after it
reads the study: on a small model the two cost more than the epoch itself (a population of 8
logistic regressions spent 7.5 s of 11 in them against 2.4 s training). The learning curves
are the trial's own record of every epoch (``curves``, written once when it ends), so the
reports are only for the pruner:

- ``none``: no report at all;
- ``hyperband``, ``successive_halving``: the rungs alone, ``min_resource·ηᵏ`` (from
  ``min_early_stopping_rate``), and the last epoch (``max_resource: auto`` reads the
  trials' last steps). The pruner decides on the value at the step that reaches a rung,
  which is the rung itself, so its decisions are those it made on every epoch's report;
  with ``min_resource: auto`` (estimated from finished trials) every epoch;
- ``median``, ``percentile``: every epoch (they compare the best value over all the steps a
  trial reported).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import optuna

from regcore.spec import SweepSpec
from regcore.spec._algorithms import PRUNERS

Epochs = Callable[[int], bool]


def _never(epoch: int) -> bool:
    return False


def _always(epoch: int) -> bool:
    return True


def reporting_epochs(spec: SweepSpec) -> Epochs:
    """Whether a trial of ``spec`` reports after ``epoch`` (0-based: Optuna's step)."""
    name = spec.pruner.name
    if name == "none":
        return _never
    if name not in ("hyperband", "successive_halving"):
        return _always
    kind = PRUNERS[name]
    defaults = inspect.signature(getattr(optuna.pruners, kind.optuna_class)).parameters
    options = {k: p.default for k, p in defaults.items()} | kind.keywords(spec, spec.pruner.options)
    min_resource = options["min_resource"]
    if not isinstance(min_resource, int):  # "auto": not known before trials have finished
        return _always
    eta: int = options["reduction_factor"]
    rung = min_resource * eta ** int(options.get("min_early_stopping_rate", 0))
    last = spec.training.epochs - 1
    rungs = {last}
    while rung < last:
        rungs.add(rung)
        rung *= eta
    return rungs.__contains__
