"""The trial runner: one Optuna trial of a sweep, from suggestion to ``tell``.

Whatever happens inside a trial ends as a trial state with a reason, never as a crashed
worker: a diverging loss, CUDA out of memory, a workload that cannot be built and any other
error are ``FAIL`` with ``fail_reason`` recorded; a stop request is ``FAIL`` marked
``interrupted`` (it does not use up the budget, see :func:`regcore.store.count_trials`).
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy as sa
import torch
from optuna.trial import TrialState

from regcore.spec import EarlyStoppingSpec, SweepSpec
from regcore.spec.suggest import suggest
from regcore.trial_kinds import CONFIRM_SEED, CONFIRM_SPLIT, rules_of
from regcore.worker.function_process import FunctionCall
from regcore.worker.functions import FunctionRunner, TrialFailed, train_function
from regcore.worker.probe import CostProbes
from regcore.worker.training import (
    DivergedError,
    EarlyStop,
    TrainingInterrupted,
    train_config,
    train_workload,
)
from regcore.worker.trial_end import Reporter, complete, fail, interrupted, pruned, record_setting
from regcore.workloads import (
    TrainingFunction,
    WorkloadError,
    build_workload,
    get_workload,
    plugin_modules,
)

_log = logging.getLogger(__name__)

#: Errors of the connection to the database, which say nothing about the trial's point.
DATABASE_ERRORS = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    optuna.exceptions.StorageInternalError,
)


@dataclass(kw_only=True)
class WarmStart:
    """A trial that starts from trained ``weights`` (a path point, :mod:`regcore.sweeps.path`):
    at most ``epochs`` epochs, ending after ``patience`` without improvement. The weights it
    trained to are left in ``trained`` when it completes."""

    weights: Mapping[str, torch.Tensor] | None
    epochs: int | None = None
    patience: int | None = None
    trained: dict[str, torch.Tensor] | None = None

    @property
    def stop_rule(self) -> EarlyStoppingSpec | None:
        """``patience`` as an early-stopping rule that keeps the last epoch's weights."""
        if self.patience is None:
            return None
        return EarlyStoppingSpec(patience=self.patience, restore_best=False)


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
    probes: CostProbes | None = None,
    warm: WarmStart | None = None,
) -> TrialState:
    """Train the point ``trial`` suggests and tell ``study`` how it ended.

    A training function runs in ``functions``' child process (a one-off child when None);
    one that ignores a stop request is terminated after ``grace_s``. With ``artifact_dir``,
    a trial better than every one before it keeps its weights there (``optuna.artifacts``),
    so optuna-dashboard offers the best model for download. Every trial records its
    per-epoch curves (``curves``: train and validation loss) however it ended. ``probes``
    times the sweep's methods on this device once, to run the cheapest of a class. ``warm``
    starts the built-in loop from trained weights (a path point).
    """
    reporter = Reporter(trial, spec)
    stop = should_stop or (lambda: False)
    attrs = trial.user_attrs
    try:
        # The cost probe times the search's methods; a confirmation repeats a trial's method.
        probed = probes if rules_of(trial).in_search_study else None
        point = suggest(trial, spec, costs=None if probed is None else probed.costs(study, spec))
        kind = get_workload(spec.workload.name)
        config = train_config(spec, lr=point.lr)
        if device is not None:
            config = dataclasses.replace(config, device=device)
        if CONFIRM_SEED in attrs:  # a confirmation: the setting, another seed
            config = dataclasses.replace(config, seed=int(attrs[CONFIRM_SEED]))
        if warm is not None:
            epochs = config.epochs if warm.epochs is None else warm.epochs
            config = dataclasses.replace(config, epochs=epochs, early_stopping=warm.stop_rule)
        l1, l2 = record_setting(trial, point, seed=config.seed, kind=kind)
        params = {**spec.workload.params, **point.params}
        if CONFIRM_SPLIT in attrs and kind.split_param is not None:  # and another data split
            params[kind.split_param] = attrs[CONFIRM_SPLIT]
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
            with _runner(functions) as runner, tempfile.TemporaryDirectory() as scratch:
                watch = None
                if warm is not None:  # a path's trial: its start's weights in, its own out
                    call = _warm_call(call, warm, Path(scratch))
                    first = spec.objectives[0]
                    watch = EarlyStop(
                        rule=warm.stop_rule,
                        metric=first.metric,
                        maximize=first.direction == "maximize",
                    )
                result = train_function(
                    runner,
                    call,
                    on_epoch=reporter,
                    should_stop=stop,
                    grace_s=grace_s,
                    early_stop=watch,
                    ran=reporter.ran,
                )
                if warm is not None and call.warm_to is not None:
                    warm.trained = torch.load(call.warm_to, weights_only=True)
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
                initial_state=None if warm is None else warm.weights,
            )
    except optuna.TrialPruned:
        return pruned(study, trial, reporter)
    except TrainingInterrupted as exc:
        return interrupted(study, trial, reporter, str(exc))
    except DivergedError as exc:
        reporter.diverged()
        return fail(study, trial, reporter, f"diverged: {exc}", final=True)
    except TrialFailed as exc:
        return fail(study, trial, reporter, str(exc), final=True)
    except torch.OutOfMemoryError as exc:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        reason = f"out of memory: {str(exc).splitlines()[0]}"
        return fail(study, trial, reporter, reason, final=True)
    except (WorkloadError, ValueError) as exc:
        return fail(study, trial, reporter, f"invalid: {exc}", final=True)
    except DATABASE_ERRORS:
        # The database, not the trial, failed: no verdict on this point. The worker's loop
        # retries with backoff and queues the trial again (it uses no budget).
        raise
    except Exception as exc:  # a trial must never take its worker down
        _log.exception("trial %d of %s failed", trial.number, study.study_name)
        reason = f"error: {type(exc).__name__}: {exc}"
        return fail(study, trial, reporter, reason, final=True)
    attrs = {
        "device": result.device,
        "epochs_run": result.epochs_run,
        # Which epoch's metrics are the result (1-based): the last, or early stopping's best.
        "objective_epoch": (result.objective_epoch + 1) or result.epochs_run,
        "wall_s": result.wall_s,
        "median_step_ms": result.median_step_ms,
    }
    model = result.model
    if warm is not None and model is not None:
        warm.trained = {k: v.detach().clone() for k, v in model.state_dict().items()}
    return complete(
        study,
        trial,
        spec,
        reporter,
        metrics=result.metrics,
        attrs=attrs,
        weights=None if model is None else (lambda: model),
        artifact_dir=artifact_dir,
    )


def _warm_call(call: FunctionCall, warm: WarmStart, scratch: Path) -> FunctionCall:
    """``call`` with the weights ``warm`` starts from saved for the child, and where it saves
    the weights it trained to."""
    warm_from = None
    if warm.weights is not None:
        warm_from = scratch / "start.pt"
        torch.save(dict(warm.weights), warm_from)
    return dataclasses.replace(call, warm_from=warm_from, warm_to=scratch / "trained.pt")


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
