"""Path mode: follow λ upward from the unregularized model, each point warm-started.

``sampler: {name: path}`` does not sample. Like glmnet's regularization path (and LassoNet's,
which trains each point with a small fraction of the dense budget), one worker:

1. trains the λ = 0 baseline for the whole ``training.epochs`` (the dense start);
2. for each method class, walks λ up geometrically over ``points`` values of the spec's log
   ranges (λ₁ and λ₂ move together when both are ranges: a fixed ratio in log space; a
   number stays fixed), each point warm-started from the previous point's weights and trained
   for ``epochs_fraction`` of the epochs, ending early after ``patience`` epochs without
   improvement; a class's path ends after ``stop_after_worse`` points in a row worse than its
   best (λ is past what helps);
3. re-trains the best point from scratch for the whole epochs: warm starts can generalize
   worse than training from scratch (Ash & Adams, NeurIPS 2020), so the recommendation is the
   re-trained value, and the report shows both.

Every point is a trial (user attributes ``path_step``, ``warm_start``: the trial number it
started from; the re-train ``path_retrain``: the point it repeats), counted against the
budget like any other.
"""

from __future__ import annotations

import math
from typing import Any

from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution
from optuna.samplers import BaseSampler, RandomSampler
from optuna.study import Study
from optuna.trial import FrozenTrial

from regcore.regularizers import L1_METHODS
from regcore.spec import Range, SweepSpec


class PathSampler(BaseSampler):
    """The options of path mode (see the module). Path trials come with their parameters;
    anything else a study asks of it is sampled at random."""

    def __init__(
        self,
        *,
        seed: int | None = None,
        points: int = 8,
        epochs_fraction: float = 0.1,
        patience: int = 3,
        stop_after_worse: int = 2,
    ) -> None:
        if points < 2:
            raise ValueError(f"a path needs at least 2 points, but got {points=}")
        if not 0 < epochs_fraction <= 1:
            raise ValueError(f"epochs_fraction must be in (0, 1], but got {epochs_fraction=}")
        if patience < 1 or stop_after_worse < 1:
            raise ValueError(
                f"patience and stop_after_worse must be at least 1, but got {patience=}, "
                f"{stop_after_worse=}"
            )
        self.points = points
        self.epochs_fraction = epochs_fraction
        self.patience = patience
        self.stop_after_worse = stop_after_worse
        self._random = RandomSampler(seed=seed)

    def point_epochs(self, epochs: int) -> int:
        """The epochs a warm-started point trains at most."""
        return max(1, math.ceil(self.epochs_fraction * epochs))

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)


def _walk(value: float | Range, points: int) -> list[float]:
    if isinstance(value, Range):
        ratio = value.high / value.low
        return [value.low * ratio ** (i / (points - 1)) for i in range(points)]
    return [float(value)] * points


def path_points(spec: SweepSpec, points: int) -> dict[str, list[tuple[float, float]]]:
    """(λ₁, λ₂) of each class's path, smallest first."""
    space = spec.search_space
    walks: dict[str, list[tuple[float, float]]] = {}
    for cls, methods in spec.method_classes.items():
        applies_l1 = any(m in L1_METHODS for m in methods)
        l1s = _walk(space.l1, points) if applies_l1 else [0.0] * points  # type: ignore[arg-type]
        l2s = _walk(space.l2, points)  # type: ignore[arg-type]
        walks[cls] = list(zip(l1s, l2s, strict=True))
    return walks


def point_params(
    spec: SweepSpec, cls: str, l1: float, l2: float
) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """A path point's parameters (the ones :func:`regcore.spec._suggest.suggest` samples)
    and their distributions."""
    space = spec.search_space
    params: dict[str, Any] = {}
    found: dict[str, BaseDistribution] = {}
    classes = list(spec.method_classes)
    if len(classes) > 1:
        params["method_class"] = cls
        found["method_class"] = CategoricalDistribution(classes)
    if isinstance(space.l1, Range) and any(m in L1_METHODS for m in spec.method_classes[cls]):
        params["l1"] = l1
        found["l1"] = FloatDistribution(space.l1.low, space.l1.high, log=True)
    if isinstance(space.l2, Range):
        params["l2"] = l2
        found["l2"] = FloatDistribution(space.l2.low, space.l2.high, log=True)
    return params, found
