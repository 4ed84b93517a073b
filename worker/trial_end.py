"""How a trial ends, whoever trained it (the single-trial runner, a population): what it
records, the pruner after each epoch, and the ``tell``.

Every trial records the setting it trained with (``method``, ``method_class``, ``l1``,
``l2``, ``lr``, the seed, torch's version and threads, the code that ran), its learning
curves (``curves``, however it ended), and on success its metrics. A final failure (the
point itself is bad) uses budget; an interruption does not (``final_failure``, read by
:func:`regcore.store.count_trials`).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import TrialState

from regcore.spec import SweepSpec
from regcore.spec.suggest import TrialPoint
from regcore.store import set_user_attrs
from regcore.trial_kinds import rules_of
from regcore.worker.pruning import reporting_epochs
from regcore.worker.training import DivergedError
from regcore.workloads import Registered, provenance

_log = logging.getLogger(__name__)

#: The per-epoch metrics every trial keeps as its learning curves (user attribute ``curves``).
CURVES = ("train_loss", "val_loss")
#: How often a running trial's progress (``epochs_run``) is written, at most: it is for people
#: watching the dashboard, and a write every epoch was a large part of a small trial's cost.
PROGRESS_EVERY_S = 2.0


def record_setting(
    trial: optuna.Trial, point: TrialPoint, *, seed: int, kind: Registered
) -> tuple[float, float]:
    """Record what ``trial`` trains with; its λ₁ and λ₂."""
    setting = {
        "seed": seed,
        "torch_version": torch.__version__,
        # Its worker's share of the cores (regcore.worker.threads): the count changes float sums.
        "torch_threads": torch.get_num_threads(),
        "code": provenance(kind),
    }
    set_user_attrs(trial, {**point.as_attrs(), **setting})
    return point.l1, point.l2


class Reporter:
    """After each epoch: the objective to the pruner where it may decide
    (:func:`regcore.worker.pruning.reporting_epochs`; it may stop the trial), ``epochs_run`` (a
    running trial's progress, live in the dashboard) every :data:`PROGRESS_EVERY_S` at most;
    an objective that is NaN or infinite ends the trial as diverged. The learning curves,
    the last ``epochs_run`` (and, for a training function, the code its process ran) are
    written once the trial ends (:meth:`ended`, in the one transaction of its last
    attributes)."""

    def __init__(self, trial: optuna.Trial, spec: SweepSpec) -> None:
        self._trial = trial
        self._spec = spec
        self._curves: dict[str, list[float | None]] = {}
        self._code: str | None = None
        self._diverged = False
        self._epochs_run = 0
        self._progress_at = time.monotonic()  # when epochs_run was last written
        self.at_end: dict[str, Any] = {}  # more attributes to write with the trial's end
        # Optuna's pruners are single-objective; some kinds of trial run to their end.
        prunable = not spec.is_multi_objective and rules_of(trial).prunable
        self._reports = reporting_epochs(spec) if prunable else None

    def __call__(self, epoch: int, metrics: dict[str, Any]) -> None:
        """Record ``epoch``'s ``metrics``; raises :class:`~regcore.worker.training.DivergedError`
        for a non-finite objective (else it would be stored as null and the trial go on to
        COMPLETE), and ``optuna.TrialPruned`` when the pruner stops the trial."""
        self._epochs_run = epoch + 1
        for name in dict.fromkeys((*CURVES, self._spec.objectives[0].metric)):
            if name in metrics:
                value = float(metrics[name])
                self._curves.setdefault(name, []).append(value if math.isfinite(value) else None)
        for objective in self._spec.objectives:
            if objective.metric in metrics and not math.isfinite(metrics[objective.metric]):
                self._diverged = True
                raise DivergedError(
                    f"{objective.metric} became {metrics[objective.metric]} in epoch "
                    f"{epoch + 1}; λ or the learning rate is too large"
                )
        if self._reports is not None and self._reports(epoch):
            value = float(metrics[self._spec.objectives[0].metric])
            self._trial.report(value, epoch)
            if self._trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")
        if time.monotonic() - self._progress_at >= PROGRESS_EVERY_S:
            self._trial.set_user_attr("epochs_run", epoch + 1)
            self._progress_at = time.monotonic()

    def diverged(self) -> None:
        """The epoch whose training loss went non-finite ends the curves (as None), unless
        its report already did."""
        if not self._diverged:
            self._diverged = True
            self._curves.setdefault("train_loss", []).append(None)

    def ran(self, code: str) -> None:
        """The code that ran (a training function's process imports it itself)."""
        self._code = code

    def ended(self) -> dict[str, Any]:
        """What the trial records of its epochs once it ends: its learning ``curves``, the
        epochs it ran, and the ``code`` that ran when it was not the worker's own."""
        curves = {"curves": self._curves} if self._curves else {}
        progress = {"epochs_run": self._epochs_run} if self._epochs_run else {}
        return curves | progress | ({"code": self._code} if self._code else {}) | self.at_end


def fail(
    study: optuna.Study,
    trial: optuna.Trial,
    reporter: Reporter,
    reason: str,
    *,
    final: bool,
    marks: dict[str, Any] | None = None,
) -> TrialState:
    """End ``trial`` as FAIL with ``reason`` (and ``marks``), its attributes in one write."""
    # A final failure (the point itself is bad) uses up budget; an interruption does not.
    attrs = {**reporter.ended(), **(marks or {}), "fail_reason": reason, "final_failure": final}
    set_user_attrs(trial, attrs)
    study.tell(trial, state=TrialState.FAIL)
    return TrialState.FAIL


def interrupted(
    study: optuna.Study, trial: optuna.Trial, reporter: Reporter, why: str
) -> TrialState:
    """Stopped by a cancel, a deadline or its worker's stop: no verdict on its point."""
    reason = f"interrupted: {why}"
    return fail(study, trial, reporter, reason, final=False, marks={"interrupted": True})


def pruned(study: optuna.Study, trial: optuna.Trial, reporter: Reporter) -> TrialState:
    set_user_attrs(trial, reporter.ended())
    study.tell(trial, state=TrialState.PRUNED)
    return TrialState.PRUNED


def complete(
    study: optuna.Study,
    trial: optuna.Trial,
    spec: SweepSpec,
    reporter: Reporter,
    *,
    metrics: dict[str, float],
    attrs: dict[str, Any],
    weights: Callable[[], torch.nn.Module] | None = None,
    artifact_dir: Path | None = None,
) -> TrialState:
    """Record ``metrics`` and ``attrs`` and tell the objectives; FAIL when one is missing or
    not finite. With ``artifact_dir``, a trial better than every one before keeps its
    ``weights()`` there (``optuna.artifacts``: optuna-dashboard offers them)."""
    set_user_attrs(trial, {**reporter.ended(), **metrics, **attrs})
    missing = [o.metric for o in spec.objectives if o.metric not in metrics]
    if missing:
        reason = f"invalid: no {', '.join(missing)} was measured (did it call ctx.regularizer?)"
        return fail(study, trial, reporter, reason, final=True)
    values = [metrics[o.metric] for o in spec.objectives]
    if not all(math.isfinite(v) for v in values):
        return fail(study, trial, reporter, f"diverged: objective values {values}", final=True)
    if (
        artifact_dir is not None
        and weights is not None
        and rules_of(trial).in_search_study  # a confirmation's seeds are not the search's
        and _best_so_far(study, values)
    ):
        _save_weights(trial, weights(), artifact_dir)
    study.tell(trial, values)
    return TrialState.COMPLETE


def _best_so_far(study: optuna.Study, values: list[float]) -> bool:
    if len(values) != 1:
        return False  # two objectives have a front, not one best to keep
    try:
        best = study.best_value
    except ValueError:  # no COMPLETE trial yet
        return True
    if study.direction == optuna.study.StudyDirection.MAXIMIZE:
        return values[0] > best
    return values[0] < best


def _save_weights(trial: optuna.Trial, model: torch.nn.Module, artifact_dir: Path) -> None:
    """The trained weights as an artifact of ``trial`` (before ``tell``: a finished trial
    takes no more attributes). Failing to save costs the artifact, never the trial."""
    try:
        artifact_dir.mkdir(parents=True, exist_ok=True)
        store = optuna.artifacts.FileSystemArtifactStore(str(artifact_dir))
        with tempfile.TemporaryDirectory(dir=artifact_dir) as scratch:
            path = Path(scratch) / f"trial-{trial.number}-weights.pt"
            torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, path)
            artifact_id = optuna.artifacts.upload_artifact(
                artifact_store=store,
                file_path=str(path),
                study_or_trial=trial,
                mimetype="application/octet-stream",
            )
        trial.set_user_attr("weights_artifact", artifact_id)
    except Exception as exc:
        _log.warning("trial %d: could not save its weights: %s", trial.number, exc)
