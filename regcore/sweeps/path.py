"""Path mode: follow λ upward from the unregularized model, each point warm-started.

``sampler: {name: path}`` does not sample. Like glmnet's regularization path (and LassoNet's,
which trains each point with a small fraction of the dense budget), one worker:

1. trains the λ = 0 baseline for the whole ``training.epochs`` (the dense start);
2. for each method class, walks λ up geometrically over ``points`` values of the spec's log
   ranges, λ₁ and λ₂ together (the diagonal in log space), each point warm-started from
   the previous point's weights and trained for ``epochs_fraction`` of the epochs, ending
   early after ``patience`` epochs without improvement;
3. for the class whose walk went best, walks ``ratios`` directions of the λ₁/λ₂ plane (as
   glmnet's α: λ₁ alone, λ₂ alone, and in between), when both are ranges and the class
   applies λ₁;
4. re-trains from scratch, for the whole epochs, the best point of each class's best walk
   (``retrain`` classes, the best first; a class whose walks never beat the dense start is
   left out): warm starts can generalize worse than training
   from scratch (Ash & Adams, NeurIPS 2020), and a λ a trained network survives can kill
   one at initialization. Each then steps back along its walk to smaller λ, re-training,
   while that does better or while what it gave is worse than the dense start;
5. refines the best from-scratch result by a search from scratch (``refine`` trials): half
   a walk's step up and down the walk it came from, moving to a better point (by more than
   0.1 %) or halving the step (to an eighth), then each λ up and down alone from a quarter
   step: a path's points are only a grid's resolution, and the best λ often lies just
   short of the one that kills the network.

The path's answer is the best of its from-scratch trials (and the dense start), never a
warm start's value.

A walk ends after ``stop_after_worse`` points in a row worse than its best, but only once a
point has beaten the dense start: below the range where λ helps, a warm start from an
overfit model keeps overfitting, and an early stop there would end the walk before λ
reaches that range. Every point is a trial (user attributes ``path_step``, ``path_walk``,
``warm_start``: the trial it started from; a re-train ``path_retrain``: the point it
repeats), counted against the budget like any other.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
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
        ratios: int = 3,
        retrain: int = 3,
        refine: int = 6,
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
        if not 1 <= ratios <= 9:
            raise ValueError(f"ratios must be 1 (λ₁ and λ₂ together) to 9, but got {ratios=}")
        if not 1 <= retrain <= 20:
            raise ValueError(f"retrain must be 1 to 20 points, but got {retrain=}")
        if not 0 <= refine <= 50:
            raise ValueError(f"refine must be 0 to 50 trials, but got {refine=}")
        self.points = points
        self.epochs_fraction = epochs_fraction
        self.patience = patience
        self.stop_after_worse = stop_after_worse
        self.ratios = ratios
        self.retrain = retrain
        self.refine = refine
        self._random = RandomSampler(seed=seed)

    def point_epochs(self, epochs: int) -> int:
        """The epochs a warm-started point trains at most."""
        return max(1, math.ceil(self.epochs_fraction * epochs))

    @property
    def reserved(self) -> int:
        """Trials the walks leave to what comes after them: re-trains and refinement."""
        return self.retrain + self.refine

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


@dataclass(frozen=True, kw_only=True)
class Walk:
    """One line of the λ₁ × λ₂ plane a class walks up, smallest λ first."""

    key: str  # "proximal", or "proximal λ₁:λ₂ 1:0" for a direction off the diagonal
    method_class: str
    points: list[tuple[float, float]]
    direction: tuple[float, float] = (1.0, 1.0)  # the share of each log range it covers


def _along(value: float | Range, share: float, t: float) -> float:
    """λ at step ``t`` ∈ [0, 1] of a walk that covers ``share`` of a log range in log space."""
    if isinstance(value, Range):
        return float(value.low * (value.high / value.low) ** (t * share))
    return float(value)


def _walk(spec: SweepSpec, cls: str, direction: tuple[float, float], points: int) -> Walk:
    space = spec.search_space
    applies_l1 = any(m in L1_METHODS for m in spec.method_classes[cls])
    steps = [i / (points - 1) for i in range(points)]
    l1s = [_along(space.l1, direction[0], t) if applies_l1 else 0.0 for t in steps]  # type: ignore[arg-type]
    l2s = [_along(space.l2, direction[1], t) for t in steps]  # type: ignore[arg-type]
    key = cls if direction == (1.0, 1.0) else f"{cls} λ₁:λ₂ {direction[0]:g}:{direction[1]:g}"
    points_ = list(zip(l1s, l2s, strict=True))
    return Walk(key=key, method_class=cls, points=points_, direction=direction)


def class_walks(spec: SweepSpec, points: int) -> list[Walk]:
    """Each class's diagonal walk: λ₁ and λ₂ up their log ranges together."""
    return [_walk(spec, cls, (1.0, 1.0), points) for cls in spec.method_classes]


def directions(ratios: int) -> list[tuple[float, float]]:
    """``ratios`` directions from λ₁ alone (1, 0) through both (1, 1) to λ₂ alone (0, 1)."""
    if ratios == 1:
        return [(1.0, 1.0)]
    found = []
    for j in range(ratios):
        s = 2 * j / (ratios - 1)
        found.append((1.0, s) if s <= 1 else (2 - s, 1.0))
    return found


def ratio_walks(spec: SweepSpec, cls: str, points: int, ratios: int) -> list[Walk]:
    """The walks of ``cls`` off the diagonal: none unless both λ are ranges it applies."""
    space = spec.search_space
    applies_l1 = any(m in L1_METHODS for m in spec.method_classes[cls])
    both = isinstance(space.l1, Range) and isinstance(space.l2, Range)
    if not (both and applies_l1):
        return []
    return [_walk(spec, cls, d, points) for d in directions(ratios) if d != (1.0, 1.0)]


def compass(
    spec: SweepSpec,
    params: dict[str, Any],
    points: int,
    share: float,
    *,
    along: tuple[float, float] | None,
) -> list[dict[str, Any]]:
    """Points ``share`` of a walk's step (in log space) away from ``params``: up and down
    the walk's ``along`` direction, or (None) each λ up and down alone; the ranges' own λ
    only, inside their bounds."""
    space = spec.search_space
    steps = {}
    for i, name in enumerate(("l1", "l2")):
        value = getattr(space, name)
        weight = 1.0 if along is None else along[i]
        if isinstance(value, Range) and name in params and weight > 0:
            steps[name] = math.log(value.high / value.low) / (points - 1) * share * weight
    if along is not None:
        moves = [dict.fromkeys(steps, 1.0), dict.fromkeys(steps, -1.0)]
    else:
        moves = [{n: sign} for n in steps for sign in (1.0, -1.0)]
    found = []
    for move in moves:
        moved = dict(params)
        for name, sign in move.items():
            bounds: Range = getattr(space, name)
            value = float(params[name]) * math.exp(sign * steps[name])
            moved[name] = min(bounds.high, max(bounds.low, value))
        if moved != params and moved not in found:
            found.append(moved)
    return found


def point_params(
    spec: SweepSpec, cls: str, l1: float, l2: float
) -> tuple[dict[str, Any], dict[str, BaseDistribution]]:
    """A path point's parameters (the ones :func:`regcore.spec.suggest.suggest` samples)
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
