"""The trial runner: one Optuna trial of a sweep, from suggestion to ``tell``.

Whatever happens inside a trial ends as a trial state with a reason, never as a crashed
worker: a diverging loss, CUDA out of memory, a workload that cannot be built and any other
error are ``FAIL`` with ``fail_reason`` recorded; a stop request is ``FAIL`` marked
``interrupted`` (it does not use up the budget, see :func:`regcore.store.count_trials`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
import torch
from optuna.trial import TrialState

from regcore.spec import SweepSpec
from regcore.spec._suggest import suggest
from regcore.workloads import (
    TrainingFunction,
    WorkloadError,
    build_workload,
    get_workload,
    plugin_modules,
    provenance,
)
from worker.function_process import FunctionCall
from worker.functions import FunctionRunner, TrialFailed, train_function
from worker.training import DivergedError, TrainConfig, TrainingInterrupted, train_workload

_log = logging.getLogger(__name__)

#: Errors of the connection to the database, which say nothing about the trial's point.
DATABASE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    optuna.exceptions.StorageInternalError,
)


def train_config(spec: SweepSpec, *, lr: float) -> TrainConfig:
    """The built-in loop's settings for ``spec`` (its optimizer, training and regularize)."""
    o, t = spec.optimizer, spec.training
    first = spec.objectives[0]
    return TrainConfig(
        epochs=t.epochs,
        batch_size=t.batch_size,
        optimizer=o.name,
        lr=lr,
        momentum=o.momentum,
        nesterov=o.nesterov,
        betas=o.betas,
        lr_mult=o.lr_mult,
        scheduler=t.scheduler,
        clip_grad_norm=t.clip_grad_norm,
        num_workers=t.num_workers,
        exclude=spec.regularize.exclude,
        only=spec.regularize.only,
        seed=t.seed,
        device=t.device,
        precision=t.precision,
        monitor=first.metric,
        maximize=first.direction == "maximize",
    )


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    spec: SweepSpec,
    *,
    data_dir: Path | None = None,
    device: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    artifact_dir: Path | None = None,
    functions: FunctionRunner | None = None,
    grace_s: float = 60.0,
) -> TrialState:
    """Train the point ``trial`` suggests and tell ``study`` how it ended.

    A training function runs in ``functions``' child process (a one-off child when None);
    one that ignores a stop request is terminated after ``grace_s``. With ``artifact_dir``,
    a trial better than every one before it keeps its weights there (``optuna.artifacts``),
    so optuna-dashboard offers the best model for download. Every trial records its
    per-epoch curves (``curves``: train and validation loss) however it ended.
    """
    reporter = _Reporter(trial, spec)
    stop = should_stop or (lambda: False)
    try:
        point = suggest(trial, spec)
        baseline = bool(trial.user_attrs.get("baseline", False))
        l1, l2 = (0.0, 0.0) if baseline else (point.l1, point.l2)
        for key, value in {**point.as_attrs(), "l1": l1, "l2": l2}.items():
            trial.set_user_attr(key, value)
        kind = get_workload(spec.workload.name)
        config = train_config(spec, lr=point.lr)
        if device is not None:
            config = dataclasses.replace(config, device=device)
        trial.set_user_attr("seed", config.seed)
        trial.set_user_attr("torch_version", torch.__version__)
        trial.set_user_attr("code", provenance(kind))
        params = {**spec.workload.params, **point.params}
        if isinstance(kind, TrainingFunction):
            call = FunctionCall(
                workload=kind.name,
                plugins=plugin_modules(),
                l1=l1,
                l2=l2,
                method=point.method,
                lr=point.lr,
                epochs=config.epochs,
                seed=config.seed,
                device=config.device,
                params=params,
                data_dir=data_dir,
                number=trial.number,
                regularize=spec.regularize.options,
            )
            with _runner(functions) as runner:
                result = train_function(
                    runner, call, on_epoch=reporter, should_stop=stop, grace_s=grace_s
                )
        else:
            workload = build_workload(spec.workload.name, params, data_dir=data_dir)
            result = train_workload(
                workload,
                l1=l1,
                l2=l2,
                method=point.method,
                config=config,
                on_epoch=reporter,
                should_stop=stop,
            )
    except optuna.TrialPruned:
        reporter.record_curves()
        study.tell(trial, state=TrialState.PRUNED)
        return TrialState.PRUNED
    except TrainingInterrupted as exc:
        trial.set_user_attr("interrupted", True)
        return _fail(study, trial, reporter, f"interrupted: {exc}", final=False)
    except DivergedError as exc:
        reporter.diverged()
        return _fail(study, trial, reporter, f"diverged: {exc}", final=True)
    except TrialFailed as exc:
        return _fail(study, trial, reporter, str(exc), final=True)
    except torch.OutOfMemoryError as exc:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        reason = f"out of memory: {str(exc).splitlines()[0]}"
        return _fail(study, trial, reporter, reason, final=True)
    except (WorkloadError, ValueError) as exc:
        return _fail(study, trial, reporter, f"invalid: {exc}", final=True)
    except DATABASE_ERRORS:
        # The database, not the trial, failed: no verdict on this point. The worker's loop
        # retries with backoff and queues the trial again (it uses no budget).
        raise
    except Exception as exc:  # a trial must never take its worker down
        _log.exception("trial %d of %s failed", trial.number, study.study_name)
        reason = f"error: {type(exc).__name__}: {exc}"
        return _fail(study, trial, reporter, reason, final=True)

    reporter.record_curves()
    trial.set_user_attr("device", result.device)
    for key, value in result.metrics.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("epochs_run", result.epochs_run)
    trial.set_user_attr("wall_s", result.wall_s)
    trial.set_user_attr("median_step_ms", result.median_step_ms)
    missing = [o.metric for o in spec.objectives if o.metric not in result.metrics]
    if missing:
        reason = f"invalid: no {', '.join(missing)} was measured (did it call ctx.regularizer?)"
        return _fail(study, trial, reporter, reason, final=True)
    values = [result.metrics[o.metric] for o in spec.objectives]
    if not all(math.isfinite(v) for v in values):
        return _fail(study, trial, reporter, f"diverged: objective values {values}", final=True)
    if artifact_dir is not None and result.model is not None and _best_so_far(study, values):
        _save_weights(trial, result.model, artifact_dir)
    study.tell(trial, values)
    return TrialState.COMPLETE


@contextmanager
def _runner(functions: FunctionRunner | None) -> Iterator[FunctionRunner]:
    """The worker's child process, or one for this trial alone."""
    if functions is not None:
        yield functions
        return
    own = FunctionRunner()
    try:
        yield own
    finally:
        own.close(kill=True)


def _fail(
    study: optuna.Study, trial: optuna.Trial, reporter: _Reporter, reason: str, *, final: bool
) -> TrialState:
    reporter.record_curves()
    trial.set_user_attr("fail_reason", reason)
    # A final failure (the point itself is bad) uses up budget; an interruption does not.
    trial.set_user_attr("final_failure", final)
    study.tell(trial, state=TrialState.FAIL)
    return TrialState.FAIL


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


#: The per-epoch metrics every trial keeps as its learning curves (user attribute ``curves``).
CURVES = ("train_loss", "val_loss")


class _Reporter:
    """After each epoch: the objective to the pruner (which may stop the trial), and the
    learning curves, written to the trial once it ends (``record_curves``)."""

    def __init__(self, trial: optuna.Trial, spec: SweepSpec) -> None:
        self._trial = trial
        self._spec = spec
        self._curves: dict[str, list[float | None]] = {}

    def __call__(self, epoch: int, metrics: dict[str, Any]) -> None:
        self._trial.set_user_attr("epochs_run", epoch + 1)
        for name in dict.fromkeys((*CURVES, self._spec.objectives[0].metric)):
            if name in metrics:
                value = float(metrics[name])
                self._curves.setdefault(name, []).append(value if math.isfinite(value) else None)
        if self._spec.is_multi_objective:
            return  # Optuna's pruners are single-objective; nothing to report to.
        value = float(metrics[self._spec.objectives[0].metric])
        if math.isfinite(value):
            self._trial.report(value, epoch)
        if self._trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

    def diverged(self) -> None:
        """The epoch whose training loss went non-finite ends the curves (as None)."""
        self._curves.setdefault("train_loss", []).append(None)

    def record_curves(self) -> None:
        if self._curves:
            self._trial.set_user_attr("curves", self._curves)
