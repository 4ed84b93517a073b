"""A worker running a sweep's regularization path (:mod:`regcore.sweeps.path`): the dense start,
the walks of warm-started points, and the re-trains from scratch.

One worker holds a sweep's path at a time (the warm starts are in its memory): the daemon
hands it out under the study's lock to a worker while no live one holds it
(:func:`regcore.worker.claims.take_path`). Its trials are claimed as fixed points under the budget
(:class:`regcore.store.FixedPoint`) and never queued again: a path cut short (a stop, a
crash, an outage) resumes after the walks it had finished, from a new dense start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from regcore.spec import SweepSpec
from regcore.spec.suggest import create_sampler
from regcore.store import FixedPoint
from regcore.sweeps.path import PathSampler, Walk, class_walks, compass, point_params, ratio_walks
from regcore.trial_kinds import (
    BASELINE,
    PATH_DIRECTION,
    PATH_REFINE,
    PATH_RETRAIN,
    PATH_STEP,
    PATH_WALK,
    WARM_START,
    TrialKind,
    kind_of,
)
from regcore.worker.runner import WarmStart

_log = logging.getLogger(__name__)

#: Study user attributes: the worker holding the path, the walks done, the path's end.
HOLDER, WALKED, FINISHED = "path_worker", "path_walked", "path_finished"

Weights = dict[str, torch.Tensor]
_FROM_SCRATCH = (TrialKind.PATH_RETRAIN, TrialKind.PATH_REFINE)
_TIE = 1e-3  # a refinement moves only for a better value by more than this share


@dataclass(frozen=True)
class Start:
    """Where a point starts: the trial it continues, its weights and its value."""

    number: int
    weights: Weights
    value: float  # sign-adjusted: smaller is better


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """The same point: equal parameters, λ equal up to rounding (a step up and back down)."""
    if a.keys() != b.keys():
        return False
    return all(
        math.isclose(a[k], b[k], rel_tol=1e-9) if isinstance(a[k], float) else a[k] == b[k]
        for k in a
    )


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
        # The walks leave this much budget to the trials from scratch after them (at most
        # half of what the dense start leaves, so that a small budget still walks).
        self.reserve = min(sampler.reserved, (self.spec.budget.n_trials - 1) // 2)
        self.sign = -1.0 if self.spec.objectives[0].direction == "maximize" else 1.0

    def run(self) -> None:
        """Walk, re-train the best walk's best, refine it, re-train the next best walks'
        (see :mod:`regcore.sweeps.path`); finished once all of it ran."""
        if self._walks() and self._retrain(self._class_walks()) and self._refine():
            self.study.set_user_attr(FINISHED, True)

    def _walks(self) -> bool:
        """Walk what is left to walk, while the budget leaves room for the re-trains; False
        when the path must stop (stopped, or no budget even for its dense start)."""
        walked = list(self.study.user_attrs.get(WALKED, []))
        first = class_walks(self.spec, self.options.points)
        dense: Start | None = None
        for stage in (first, None):  # the classes' diagonals, then the best class's ratios
            walks = stage if stage is not None else self._ratio_walks(first)
            for walk in (w for w in walks if w.key not in walked):
                dense = dense or self._dense()
                if dense is None:
                    return False
                ended = self._walk(walk, dense)
                if ended == "stopped":
                    return False
                walked.append(walk.key)  # a walk the budget cut short is not walked again
                self.study.set_user_attr(WALKED, walked)
                if ended == "budget":
                    return True  # what is left is the re-trains'
        return True

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

    def _walk(self, walk: Walk, dense: Start) -> Literal["walked", "budget", "stopped"]:
        """Walk ``walk``'s points from ``dense``: to its end (or to where λ is past what
        helps), until only the re-trains' budget is left, or until the worker stops."""
        start = dense
        best, worse, beaten = math.inf, 0, False
        for step, (l1, l2) in enumerate(walk.points, start=1):
            params, distributions = point_params(self.spec, walk.method_class, l1, l2)
            attrs = {
                PATH_STEP: step,
                PATH_WALK: walk.key,
                PATH_DIRECTION: list(walk.direction),
                WARM_START: start.number,
            }
            point = FixedPoint(
                params=params,
                distributions=distributions,
                user_attrs=attrs,
                reserve=self.reserve,  # what the trials from scratch will need
            )
            trial = self.claim(point)
            if trial is None:
                return "budget"
            warm = WarmStart(
                weights=start.weights,
                epochs=self.options.point_epochs(self.spec.training.epochs),
                patience=self.options.patience,
            )
            state = self.train(trial, warm)
            frozen = self._frozen(trial)
            if frozen.user_attrs.get("interrupted"):
                return "stopped"
            if state != TrialState.COMPLETE or warm.trained is None or frozen.value is None:
                break  # diverged: a larger λ will not do better
            value = self._key(frozen)
            start = Start(trial.number, warm.trained, value)
            beaten = beaten or value < dense.value
            best, worse = (value, 0) if value < best else (best, worse + 1)
            if beaten and worse >= self.options.stop_after_worse:
                break  # λ is past what helps
        _log.info("%s: walk %s done", self.spec.name, walk.key)
        return "walked"

    def _class_walks(self) -> list[list[FrozenTrial]]:
        """Each class's best walk (its points, smallest λ first), the best class first; a
        class none of whose points beat the dense start, even warm, is left out."""
        walks: dict[str, list[FrozenTrial]] = {}
        for t in sorted(self._points(), key=lambda t: t.user_attrs[PATH_STEP]):
            walks.setdefault(str(t.user_attrs.get(PATH_WALK, "")), []).append(t)
        dense = self._dense_value()
        best: dict[str, list[FrozenTrial]] = {}
        for walk in sorted(walks.values(), key=lambda w: min(self._key(t) for t in w)):
            if min(self._key(t) for t in walk) < dense:
                best.setdefault(str(walk[0].params.get("method_class", "")), walk)
        return list(best.values())

    def _retrain(self, walks: list[list[FrozenTrial]]) -> bool:
        """For the first ``retrain`` of ``walks``: re-train its best point from scratch, then
        smaller λ along it while that does better, or while what it gave is worse than the
        dense start (a λ a trained network survives can kill one at initialization); False
        if it could not go on (out of budget, or stopped)."""
        dense = self._dense_value()
        for walk in walks[: self.options.retrain]:
            at, last = walk.index(min(walk, key=self._key)), math.inf
            while at >= 0:
                point = walk[at]
                attrs = {PATH_RETRAIN: point.number, **self._direction(point)}
                value = self._scratch(point, attrs, point.params)
                if value is None:
                    return False
                if value >= last and value < dense:
                    break  # smaller λ no longer helps
                last, at = min(last, value), at - 1
        return True

    def _refine(self) -> bool:
        """A search from scratch around the best from-scratch result (see
        :func:`regcore.sweeps.path.compass`): along its walk, then each λ alone; ``refine`` trials
        at most; False if it could not go on (out of budget, or stopped)."""
        finished = self.study.get_trials(deepcopy=False)
        left = self.options.refine - sum(PATH_REFINE in t.user_attrs for t in finished)
        for along_walk, share in ((True, 0.5), (False, 0.25)):
            while left > 0 and share >= 0.125:
                best = self._best_from_scratch()
                if best is None or self._key(best) >= self._dense_value():
                    return True  # no λ beat λ = 0 from scratch: nothing to refine
                direction = best.user_attrs.get(PATH_DIRECTION, [1.0, 1.0])
                along = (float(direction[0]), float(direction[1])) if along_walk else None
                moves = compass(self.spec, best.params, self.options.points, share, along=along)
                moved = False
                for params in moves:
                    if left == 0:
                        break
                    attrs = {PATH_REFINE: best.number, **self._direction(best)}
                    value = self._scratch(best, attrs, params)
                    if value is None:
                        return False
                    left -= 1
                    if value < self._key(best) - _TIE * abs(self._key(best)):
                        moved = True
                        break  # from the better point, at the same step
                if not moved:
                    share /= 2
        return True

    @staticmethod
    def _direction(trial: FrozenTrial) -> dict[str, Any]:
        """The walk direction a trial from scratch carries on from ``trial``."""
        found = trial.user_attrs.get(PATH_DIRECTION)
        return {} if found is None else {PATH_DIRECTION: found}

    def _best_from_scratch(self) -> FrozenTrial | None:
        complete = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        found = [t for t in complete if kind_of(t) in _FROM_SCRATCH]
        return min(found, key=self._key) if found else None

    def _scratch(
        self, source: FrozenTrial, attrs: dict[str, Any], params: dict[str, Any]
    ) -> float | None:
        """``params`` (of ``source``'s distributions) trained from scratch, marked ``attrs``,
        unless a finished trial already was: its value (inf if it failed); None when it
        could not run (out of budget, or stopped)."""
        for t in self.study.get_trials(deepcopy=False):
            if t.state.is_finished() and kind_of(t) in _FROM_SCRATCH and _same(t.params, params):
                return self._key(t)
        fixed = FixedPoint(params=params, distributions=source.distributions, user_attrs=attrs)
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
