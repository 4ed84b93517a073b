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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy as sa
import torch
from optuna.trial import TrialState

from regcore.spec import SweepSpec
from regcore.spec._suggest import suggest
from regcore.workloads import WorkloadError, build_workload
from worker.training import DivergedError, TrainConfig, TrainingInterrupted, train_workload

_log = logging.getLogger(__name__)

#: Errors of the connection to the database, which say nothing about the trial's point.
DATABASE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    optuna.exceptions.StorageInternalError,
)


def train_config(spec: SweepSpec, *, lr: float) -> TrainConfig:
    o, t = spec.optimizer, spec.training
    return TrainConfig(
        epochs=t.epochs,
        batch_size=t.batch_size,
        optimizer=o.name,
        lr=lr,
        momentum=o.momentum or 0.0,
        betas=o.betas or (0.9, 0.999),
        seed=t.seed,
        device=t.device,
        precision=t.precision,
    )


def _fail(study: optuna.Study, trial: optuna.Trial, reason: str, *, final: bool) -> TrialState:
    trial.set_user_attr("fail_reason", reason)
    # A final failure (the point itself is bad) uses up budget; an interruption does not.
    trial.set_user_attr("final_failure", final)
    study.tell(trial, state=TrialState.FAIL)
    return TrialState.FAIL


def run_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    spec: SweepSpec,
    *,
    data_dir: Path | None = None,
    device: str | None = None,
    should_stop: Callable[[], bool] | None = None,
    artifact_dir: Path | None = None,
) -> TrialState:
    """Train the point ``trial`` suggests and tell ``study`` how it ended.

    With ``artifact_dir``, a trial better than every one before it keeps its weights there
    (``optuna.artifacts``), so optuna-dashboard offers the best model for download.
    """
    try:
        point = suggest(trial, spec)
        baseline = bool(trial.user_attrs.get("baseline", False))
        l1, l2 = (0.0, 0.0) if baseline else (point.l1, point.l2)
        for key, value in {**point.as_attrs(), "l1": l1, "l2": l2}.items():
            trial.set_user_attr(key, value)
        workload = build_workload(spec.workload.name, spec.workload.params, data_dir=data_dir)
        config = train_config(spec, lr=point.lr)
        if device is not None:
            config = dataclasses.replace(config, device=device)
        trial.set_user_attr("seed", config.seed)
        trial.set_user_attr("torch_version", torch.__version__)
        result = train_workload(
            workload,
            l1=l1,
            l2=l2,
            method=point.method,
            config=config,
            on_epoch=_reporter(trial, spec),
            should_stop=should_stop,
        )
    except optuna.TrialPruned:
        study.tell(trial, state=TrialState.PRUNED)
        return TrialState.PRUNED
    except TrainingInterrupted as exc:
        trial.set_user_attr("interrupted", True)
        return _fail(study, trial, f"interrupted: {exc}", final=False)
    except DivergedError as exc:
        return _fail(study, trial, f"diverged: {exc}", final=True)
    except torch.OutOfMemoryError as exc:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return _fail(study, trial, f"out of memory: {str(exc).splitlines()[0]}", final=True)
    except (WorkloadError, ValueError) as exc:
        return _fail(study, trial, f"invalid: {exc}", final=True)
    except DATABASE_ERRORS:
        # The database, not the trial, failed: no verdict on this point. The worker's loop
        # retries with backoff and queues the trial again (it uses no budget).
        raise
    except Exception as exc:  # a trial must never take its worker down
        _log.exception("trial %d of %s failed", trial.number, study.study_name)
        return _fail(study, trial, f"error: {type(exc).__name__}: {exc}", final=True)

    trial.set_user_attr("device", result.device)
    for key, value in result.metrics.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("epochs_run", result.epochs_run)
    trial.set_user_attr("wall_s", result.wall_s)
    trial.set_user_attr("median_step_ms", result.median_step_ms)
    values = [result.metrics[o.metric] for o in spec.objectives]
    if not all(math.isfinite(v) for v in values):
        return _fail(study, trial, f"diverged: objective values {values}", final=True)
    if artifact_dir is not None and result.model is not None and _best_so_far(study, values):
        _save_weights(trial, result.model, artifact_dir)
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


def _reporter(trial: optuna.Trial, spec: SweepSpec) -> Callable[[int, dict[str, Any]], None]:
    """Report the objective after each epoch, so pruners can stop hopeless trials."""
    metric = spec.objectives[0].metric

    def report(epoch: int, metrics: dict[str, Any]) -> None:
        trial.set_user_attr("epochs_run", epoch + 1)
        if spec.is_multi_objective:
            return  # Optuna's pruners are single-objective; nothing to report to.
        value = float(metrics[metric])
        if math.isfinite(value):
            trial.report(value, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}")

    return report
