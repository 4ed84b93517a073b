"""A worker running a sweep's regularization path (:mod:`regcore.path`): the dense start,
each class's warm-started points, and the re-train of the best point from scratch.

One worker holds a sweep's path at a time (the warm starts are in its memory): the daemon
hands it out under the study's lock to a worker while no live one holds it
(:func:`take_path`). Its trials are claimed as fixed points under the budget
(:class:`regcore.store.FixedPoint`) and never queued again: a path cut short (a stop, a
crash, an outage) resumes after the classes it had walked, from a new dense start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import torch
from optuna.trial import FrozenTrial, TrialState

from regcore.path import PathSampler, path_points, point_params
from regcore.spec import SweepSpec
from regcore.spec._suggest import create_sampler
from regcore.store import FixedPoint
from worker.runner import WarmStart

_log = logging.getLogger(__name__)

#: Study user attributes: the worker holding the path, the classes walked, the path's end.
HOLDER, WALKED, FINISHED = "path_worker", "path_walked", "path_finished"

Weights = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Start:
    """Where a point starts: the trial it continues and its weights."""

    number: int
    weights: Weights


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

    def run(self) -> None:
        sampler = create_sampler(self.spec)
        assert isinstance(sampler, PathSampler)
        walks = path_points(self.spec, sampler.points)
        walked = list(self.study.user_attrs.get(WALKED, []))
        remaining = [cls for cls in walks if cls not in walked]
        if remaining:
            dense = self._dense()
            if dense is None:
                return
            for cls in remaining:
                if not self._walk(cls, walks[cls], dense, sampler):
                    return  # out of budget, or stopped
                walked.append(cls)
                self.study.set_user_attr(WALKED, walked)
        if self._retrain():
            self.study.set_user_attr(FINISHED, True)

    def _dense(self) -> Start | None:
        """The λ = 0 baseline, trained whole: where every class's path starts."""
        attrs = {"baseline": True, "path_step": 0}
        trial = self.claim(FixedPoint(params={}, distributions={}, user_attrs=attrs))
        if trial is None:
            return None
        warm = WarmStart(weights=None)
        if self.train(trial, warm) != TrialState.COMPLETE or warm.trained is None:
            _log.warning("%s: the dense start did not complete; the path stops", self.spec.name)
            return None
        return Start(trial.number, warm.trained)

    def _walk(
        self,
        cls: str,
        points: list[tuple[float, float]],
        dense: Start,
        sampler: PathSampler,
    ) -> bool:
        """Walk ``cls``'s points from ``dense``; False when the path must stop here."""
        start = dense
        sign = -1.0 if self.spec.objectives[0].direction == "maximize" else 1.0
        best, worse = math.inf, 0
        for step, (l1, l2) in enumerate(points, start=1):
            params, distributions = point_params(self.spec, cls, l1, l2)
            attrs = {"path_step": step, "warm_start": start.number}
            trial = self.claim(
                FixedPoint(params=params, distributions=distributions, user_attrs=attrs)
            )
            if trial is None:
                return False
            warm = WarmStart(
                weights=start.weights,
                epochs=sampler.point_epochs(self.spec.training.epochs),
                patience=sampler.patience,
            )
            state = self.train(trial, warm)
            frozen = self._frozen(trial)
            if frozen.user_attrs.get("interrupted"):
                return False
            if state != TrialState.COMPLETE or warm.trained is None or frozen.value is None:
                break  # diverged: a larger λ will not do better
            start = Start(trial.number, warm.trained)
            value = sign * frozen.value
            best, worse = (value, 0) if value < best else (best, worse + 1)
            if worse >= sampler.stop_after_worse:
                break  # λ is past what helps
        _log.info("%s: path of %s walked", self.spec.name, cls)
        return True

    def _retrain(self) -> bool:
        """The best point, trained again from scratch for every epoch; False if it could not
        run (out of budget, or stopped)."""
        trials = self.study.get_trials(deepcopy=False)
        if any("path_retrain" in t.user_attrs and t.state.is_finished() for t in trials):
            return True
        points = [
            t
            for t in trials
            if t.state == TrialState.COMPLETE and t.user_attrs.get("path_step", 0) >= 1
        ]
        if not points:
            return True
        sign = -1.0 if self.spec.objectives[0].direction == "maximize" else 1.0
        best = min(points, key=lambda t: (sign * float(t.value or 0.0), t.number))
        attrs = {"path_retrain": best.number}
        fixed = FixedPoint(params=best.params, distributions=best.distributions, user_attrs=attrs)
        trial = self.claim(fixed)
        if trial is None:
            return False
        self.train(trial, None)
        return not self._frozen(trial).user_attrs.get("interrupted")

    def _frozen(self, trial: optuna.Trial) -> FrozenTrial:
        return self.study._storage.get_trial(trial._trial_id)
