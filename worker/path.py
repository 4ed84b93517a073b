"""A worker running a sweep's regularization path (:mod:`regcore.path`): the dense start,
the walks of warm-started points, and the re-trains from scratch.

One worker holds a sweep's path at a time (the warm starts are in its memory): the daemon
hands it out under the study's lock to a worker while no live one holds it
(:func:`take_path`). Its trials are claimed as fixed points under the budget
(:class:`regcore.store.FixedPoint`) and never queued again: a path cut short (a stop, a
crash, an outage) resumes after the walks it had finished, from a new dense start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from regcore.path import PathSampler, Walk, class_walks, point_params, ratio_walks
from regcore.spec import SweepSpec
from regcore.spec._suggest import create_sampler
from regcore.store import FixedPoint
from regcore.trial_kinds import (
    BASELINE,
    PATH_RETRAIN,
    PATH_STEP,
    PATH_WALK,
    WARM_START,
    TrialKind,
    kind_of,
)
from worker.runner import WarmStart

_log = logging.getLogger(__name__)

#: Study user attributes: the worker holding the path, the walks done, the path's end.
HOLDER, WALKED, FINISHED = "path_worker", "path_walked", "path_finished"

Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Start:
    """Where a point starts: the trial it continues, its weights and its value."""

    number: int
    weights: Weights
    value: float  # sign-adjusted: smaller is better


def take_path(study: optuna.Study, worker_id: str, *, alive: Callable[[str], bool]) -> bool:
    """Whether ``worker_id`` may run the path of ``study`` (call it under the study's lock):
    True when no other live worker holds it, and then it is this worker's."""
    attrs = study.user_attrs
    if attrs.get(FINISHED):
        return False
    holder = attrs.get(HOLDER)
    if holder not in (None, worker_id) and alive(str(holder)):
        return False
    study.set_user_attr(HOLDER, worker_id)
    return True


@dataclass(kw_only=True)
class PathRun:
    """One worker's run of a sweep's path (see the module)."""

    study: optuna.Study
    spec: SweepSpec
    claim: Callable[[FixedPoint], optuna.Trial | None]  # that point, if the budget allows
    train: Callable[[optuna.Trial, WarmStart | None], TrialState | None]

    def __post_init__(self) -> None:
        sampler = create_sampler(self.spec)
        assert isinstance(sampler, PathSampler)
        self.options = sampler
        self.sign = -1.0 if self.spec.objectives[0].direction == "maximize" else 1.0

    def run(self) -> None:
        walked = list(self.study.user_attrs.get(WALKED, []))
        first = class_walks(self.spec, self.options.points)
        dense: Start | None = None
        for stage in (first, None):  # the classes' diagonals, then the best class's ratios
            walks = stage if stage is not None else self._ratio_walks(first)
            for walk in (w for w in walks if w.key not in walked):
                dense = dense or self._dense()
                if dense is None or not self._walk(walk, dense):
                    return  # out of budget, or stopped
                walked.append(walk.key)
                self.study.set_user_attr(WALKED, walked)
        if self._retrain():
            self.study.set_user_attr(FINISHED, True)

    def _ratio_walks(self, first: list[Walk]) -> list[Walk]:
        """The λ₁/λ₂ directions of the class whose diagonal walk reached the best value."""
        keys = {w.key: w.method_class for w in first}
        points = [t for t in self._points() if t.user_attrs.get(PATH_WALK) in keys]
        if not points:
            return []
        best = min(points, key=self._key)
        cls = keys[best.user_attrs[PATH_WALK]]
        return ratio_walks(self.spec, cls, self.options.points, self.options.ratios)

    def _dense(self) -> Start | None:
        """The λ = 0 baseline, trained whole: where every walk starts."""
        attrs = {BASELINE: True, PATH_STEP: 0}
        trial = self.claim(FixedPoint(params={}, distributions={}, user_attrs=attrs))
        if trial is None:
            return None
        warm = WarmStart(weights=None)
        if self.train(trial, warm) != TrialState.COMPLETE or warm.trained is None:
            _log.warning("%s: the dense start did not complete; the path stops", self.spec.name)
            return None
        frozen = self._frozen(trial)
        return Start(trial.number, warm.trained, self._key(frozen))

    def _walk(self, walk: Walk, dense: Start) -> bool:
        """Walk ``walk``'s points from ``dense``; False when the path must stop here."""
        start = dense
        best, worse, beaten = math.inf, 0, False
        for step, (l1, l2) in enumerate(walk.points, start=1):
            params, distributions = point_params(self.spec, walk.method_class, l1, l2)
            attrs = {PATH_STEP: step, PATH_WALK: walk.key, WARM_START: start.number}
            trial = self.claim(
                FixedPoint(params=params, distributions=distributions, user_attrs=attrs)
            )
            if trial is None:
                return False
            warm = WarmStart(
                weights=start.weights,
                epochs=self.options.point_epochs(self.spec.training.epochs),
                patience=self.options.patience,
            )
            state = self.train(trial, warm)
            frozen = self._frozen(trial)
            if frozen.user_attrs.get("interrupted"):
                return False
            if state != TrialState.COMPLETE or warm.trained is None or frozen.value is None:
                break  # diverged: a larger λ will not do better
            value = self._key(frozen)
            start = Start(trial.number, warm.trained, value)
            beaten = beaten or value < dense.value
            best, worse = (value, 0) if value < best else (best, worse + 1)
            if beaten and worse >= self.options.stop_after_worse:
                break  # λ is past what helps
        _log.info("%s: walk %s done", self.spec.name, walk.key)
        return True

    def _retrain(self) -> bool:
        """Re-train the best point of the best walks from scratch, best first, stepping back
        to smaller λ while a re-train is worse than the dense start; False if it could not
        go on (out of budget, or stopped)."""
        points = self._points()
        walks: dict[str, list[FrozenTrial]] = {}
        for t in sorted(points, key=lambda t: t.user_attrs[PATH_STEP]):
            walks.setdefault(str(t.user_attrs.get(PATH_WALK, "")), []).append(t)
        dense = self._dense_value()
        ranked = sorted(walks.values(), key=lambda w: min(self._key(t) for t in w))
        for walk in ranked[: self.options.retrain]:
            at = walk.index(min(walk, key=self._key))
            while at >= 0:
                value = self._retrained(walk[at])
                if value is None:
                    return False
                if value < dense:
                    break
                at -= 1  # worse than no λ from scratch: a smaller λ may not kill it
        return True

    def _retrained(self, point: FrozenTrial) -> float | None:
        """``point`` trained from scratch (again only if it never was): its value, inf if it
        failed; None when it could not run."""
        for t in self.study.get_trials(deepcopy=False):
            if t.user_attrs.get(PATH_RETRAIN) == point.number and t.state.is_finished():
                return self._key(t)
        attrs = {PATH_RETRAIN: point.number}
        fixed = FixedPoint(params=point.params, distributions=point.distributions, user_attrs=attrs)
        trial = self.claim(fixed)
        if trial is None:
            return None
        self.train(trial, None)
        frozen = self._frozen(trial)
        return None if frozen.user_attrs.get("interrupted") else self._key(frozen)

    def _points(self) -> list[FrozenTrial]:
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return [t for t in complete if kind_of(t) == TrialKind.PATH_POINT]

    def _dense_value(self) -> float:
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        dense = [t for t in complete if kind_of(t) == TrialKind.PATH_START]
        return self._key(dense[-1]) if dense else math.inf

    def _key(self, trial: FrozenTrial) -> float:
        """A trial's value, smaller is better; a trial without one is worst."""
        if trial.state != TrialState.COMPLETE or trial.value is None:
            return math.inf
        return self.sign * float(trial.value)

    def _frozen(self, trial: optuna.Trial) -> FrozenTrial:
        return self.study._storage.get_trial(trial._trial_id)
