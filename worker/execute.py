"""Running the trials a worker has claimed: one at a time, or K at once as a population.

Either way each trial gets a heartbeat row before it trains (a RUNNING trial without one is
never stale, so it would hold its budget slot forever if the worker died before its first
beat), the heartbeat thread beats for every trial held, and after a stop of the worker's
own (not a cancel) the trials it interrupted are queued again. A database outage leaves the
trials it cut off unsettled, for :mod:`regcore.worker.recovery` to end once the database answers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import optuna
from optuna.trial import TrialState

from regcore.spec import SweepSpec
from regcore.store import FixedPoint, SweepRow
from regcore.worker import recovery
from regcore.worker.functions import FunctionRunner
from regcore.worker.heartbeat import Running, WorkerState
from regcore.worker.path import PathRun
from regcore.worker.population._runner import PopulationRun
from regcore.worker.probe import CostProbes
from regcore.worker.runner import DATABASE_ERRORS, WarmStart, run_trial

_log = logging.getLogger(__name__)


@dataclass(kw_only=True)
class Execution:
    """Runs claimed trials for a worker (its state, storage and options)."""

    state: WorkerState
    storage: optuna.storages.RDBStorage
    functions: FunctionRunner
    device: str | None
    data_dir: Path | None
    artifact_dir: Path | None
    grace_s: float
    cancelled: Callable[[str], bool]  # whether a sweep was cancelled (or deleted)
    unsettled: list[tuple[optuna.Study, int]] = field(default_factory=list)
    probes: CostProbes = field(init=False)

    def __post_init__(self) -> None:
        self.probes = CostProbes(device=self.device, data_dir=self.data_dir)

    def settle(self) -> None:
        """End the trials an outage cut off, now that the database answers."""
        while self.unsettled:
            study, trial_id = self.unsettled[0]
            recovery.settle(self.storage, study, trial_id)
            self.unsettled.pop(0)

    def single(
        self,
        study: optuna.Study,
        trial: optuna.Trial,
        spec: SweepSpec,
        sweep: SweepRow,
        *,
        warm: WarmStart | None = None,
    ) -> TrialState | None:
        """Train ``trial``; how it ended (None: it was ended elsewhere meanwhile)."""
        self._begin(sweep, [trial._trial_id], trial.number)
        try:
            self.storage.record_heartbeat(trial._trial_id)
            outcome = run_trial(
                study,
                trial,
                spec,
                data_dir=self.data_dir,
                device=self.device,
                should_stop=self.state.abort.is_set,
                artifact_dir=self.artifact_dir,
                functions=self.functions,
                grace_s=self.grace_s,
                probes=self.probes,
                warm=warm,
            )
        except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
            if not recovery.finished_elsewhere(self.storage, trial._trial_id):
                raise
            # The database was out of reach longer than the grace period, so another worker
            # failed this trial as stale and queued its parameters again: that retry counts.
            _log.warning(
                "trial %d of %s was failed as stale while the database was unreachable; "
                "its retry is queued",
                trial.number,
                study.study_name,
            )
            return None
        except DATABASE_ERRORS:
            self.unsettled.append((study, trial._trial_id))  # still RUNNING, or told
            raise
        finally:
            self.state.running = Running(sweep.id)  # stop beating for it, whatever happened
        _log.info("%s: trial %d %s", sweep.name, trial.number, outcome.name)
        self._requeue_interrupted(study, sweep, {trial.number: outcome})
        return outcome

    def path(
        self,
        study: optuna.Study,
        spec: SweepSpec,
        sweep: SweepRow,
        *,
        claim: Callable[[FixedPoint], optuna.Trial | None],
    ) -> None:
        """Run the sweep's regularization path (:mod:`regcore.worker.path`), a trial at a time."""

        def train(trial: optuna.Trial, warm: WarmStart | None) -> TrialState | None:
            return self.single(study, trial, spec, sweep, warm=warm)

        PathRun(study=study, spec=spec, claim=claim, train=train).run()

    def population(
        self,
        study: optuna.Study,
        trials: list[optuna.Trial],
        spec: SweepSpec,
        sweep: SweepRow,
        *,
        size: int,
        claim: Callable[[int], list[optuna.Trial]],
    ) -> None:
        """Train ``trials`` (and refills, from ``claim``) ``size`` at a time."""

        def held(ids: list[int]) -> None:
            self.state.running = Running(sweep.id, trials[0].number, tuple(ids))

        def claim_more(n: int) -> list[optuna.Trial]:
            more = claim(n)
            for trial in more:
                self.storage.record_heartbeat(trial._trial_id)
            held([*self.state.running.trial_ids, *(t._trial_id for t in more)])
            return more

        self._begin(sweep, [t._trial_id for t in trials], trials[0].number)
        run = PopulationRun(
            study=study,
            spec=spec,
            size=size,
            claim=claim_more,
            should_stop=self.state.abort.is_set,
            on_held=held,
            device=self.device,
            data_dir=self.data_dir,
            artifact_dir=self.artifact_dir,
            costs=self.probes.costs(study, spec),
        )
        try:
            for trial in trials:
                self.storage.record_heartbeat(trial._trial_id)
            states = run.run(trials)
        except DATABASE_ERRORS:
            self.unsettled += [(study, i) for i in self.state.running.trial_ids]
            raise
        finally:
            self.state.running = Running(sweep.id)
        counts = {s.name: list(states.values()).count(s) for s in set(states.values())}
        _log.info("%s: population of %d: %s", sweep.name, size, counts)
        self._requeue_interrupted(study, sweep, states)

    def _begin(self, sweep: SweepRow, ids: list[int], number: int) -> None:
        """Trials start: a stop asked for before stands, an old abort does not."""
        if not self.state.stop.is_set():
            self.state.abort.clear()
        self.state.running = Running(sweep.id, number, tuple(ids))

    def _requeue_interrupted(
        self, study: optuna.Study, sweep: SweepRow, states: dict[int, TrialState]
    ) -> None:
        """Trials our own shutdown stopped, not the trials themselves: run them again."""
        if not self.state.stop.is_set() or self.cancelled(sweep.id):
            return
        if TrialState.FAIL not in states.values():
            return
        trials = study.get_trials(deepcopy=False)
        for number, state in states.items():
            frozen = trials[number]
            if state == TrialState.FAIL and frozen.user_attrs.get("interrupted"):
                recovery.requeue(study, frozen)
