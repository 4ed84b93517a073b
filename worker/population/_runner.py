"""Population trials as Optuna trials: the trials a worker claimed, trained K at a time and
each told on its own.

The claimed trials are grouped by what must be the same within a population (the method,
and the workload's parameters, which fix the architecture); each group trains as one
population, the others wait their turn (their worker beats for them all the while). After
every epoch each member reports to the pruner like a single trial; a member that is pruned,
diverges or finishes leaves, and its slot is refilled with a new trial when the sweep has
budget left (a new trial of another group waits for a later population instead), or the
population shrinks. A stop (cancel, deadline, shutdown) ends every trial it holds as
interrupted.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from regcore.spec import SweepSpec
from regcore.spec.suggest import TrialPoint, suggest
from regcore.worker.population._trainer import PopulationTrainer
from regcore.worker.training import DivergedError, TrainConfig, train_config
from regcore.worker.trial_end import Reporter, complete, fail, interrupted, pruned, record_setting
from regcore.workloads import build_workload, get_workload


@dataclass(eq=False, kw_only=True)
class Held:
    """A trial this worker holds: claimed, its point suggested, waiting or training."""

    trial: optuna.Trial
    point: TrialPoint
    l1: float
    l2: float
    reporter: Reporter
    started: float = field(default_factory=time.perf_counter)

    @property
    def group(self) -> str:
        """What members of one population share: the method and the workload's params."""
        return json.dumps([self.point.method, self.point.params], sort_keys=True)


@dataclass(kw_only=True)
class PopulationRun:
    """One worker's population trials of one sweep (see the module's docstring)."""

    study: optuna.Study
    spec: SweepSpec
    size: int  # K, the most members trained at once
    claim: Callable[[int], list[optuna.Trial]]  # up to n more trials of the sweep
    should_stop: Callable[[], bool]
    on_held: Callable[[list[int]], None]  # the trial ids it holds now (for the heartbeat)
    device: str | None = None
    data_dir: Path | None = None
    artifact_dir: Path | None = None
    costs: Mapping[str, float] | None = None  # the cost probe's: which method a class runs
    states: dict[int, TrialState] = field(default_factory=dict)  # trial number → how it ended
    _waiting: list[Held] = field(default_factory=list)
    _training: dict[int, Held] = field(default_factory=dict)

    def run(self, trials: list[optuna.Trial]) -> dict[int, TrialState]:
        """Train ``trials`` (and the refills) to their ends; how each ended."""
        self._waiting += [self._hold(t) for t in trials]
        while self._waiting:
            first = self._waiting[0].group
            group = [h for h in self._waiting if h.group == first][: self.size]
            self._waiting = [h for h in self._waiting if h not in group]
            self._train(group)
            if self.should_stop():
                self._interrupt(self._waiting, "stopped before its population began")
                self._waiting = []
        return self.states

    def _hold(self, trial: optuna.Trial) -> Held:
        point = suggest(trial, self.spec, costs=self.costs)
        kind = get_workload(self.spec.workload.name)
        reporter = Reporter(trial, self.spec)
        l1, l2 = record_setting(trial, point, seed=self.spec.training.seed, kind=kind)
        return Held(trial=trial, point=point, l1=l1, l2=l2, reporter=reporter)

    def _train(self, group: list[Held]) -> None:
        first = group[0].point
        config = train_config(self.spec, lr=first.lr)
        if self.device is not None:
            config = _with_device(config, self.device)
        params = {**self.spec.workload.params, **first.params}
        group = self._top_up(group)
        try:
            workload = build_workload(self.spec.workload.name, params, data_dir=self.data_dir)
            trainer = PopulationTrainer(workload, method=first.method, config=config, k=len(group))
        except ValueError as exc:
            for held in group:
                self._end(
                    held, fail(self.study, held.trial, held.reporter, f"invalid: {exc}", final=True)
                )
            return
        for slot, held in enumerate(group):
            self._start(trainer, slot, held)
        while trainer.active():
            if self.should_stop():
                self._interrupt(
                    list(self._training.values()),
                    "stopped: its sweep ended or its worker is stopping",
                )
                return
            for slot, metrics in trainer.epoch().items():
                self._after_epoch(trainer, slot, metrics)
            self._refill(trainer, group[0].group)
            self.on_held(self._held_ids())

    def _start(self, trainer: PopulationTrainer, slot: int, held: Held) -> None:
        trainer.add(slot, l1=held.l1, l2=held.l2, lr=held.point.lr)
        held.reporter.at_end["population"] = trainer.stack.k  # written with its end: no write now
        held.started = time.perf_counter()
        self._training[slot] = held

    def _after_epoch(
        self, trainer: PopulationTrainer, slot: int, metrics: dict[str, float]
    ) -> None:
        held = self._training[slot]
        member = trainer.members[slot]
        assert member is not None
        if not math.isfinite(metrics["train_loss"]):
            held.reporter.diverged()
            reason = (
                f"diverged: training loss became {metrics['train_loss']} in epoch "
                f"{member.epoch}; λ or the learning rate is too large"
            )
            self._leave(
                trainer, slot, fail(self.study, held.trial, held.reporter, reason, final=True)
            )
            return
        try:
            held.reporter(member.epoch - 1, metrics)
        except optuna.TrialPruned:
            self._leave(trainer, slot, pruned(self.study, held.trial, held.reporter))
            return
        except DivergedError as exc:  # its objective is not finite
            reason = f"diverged: {exc}"
            self._leave(
                trainer, slot, fail(self.study, held.trial, held.reporter, reason, final=True)
            )
            return
        if member.epoch < self.spec.training.epochs:
            return
        attrs: dict[str, Any] = {
            "device": str(trainer.device),
            "epochs_run": member.epoch,
            "wall_s": time.perf_counter() - held.started,
            "median_step_ms": metrics["step_time_ms"],
        }
        state = complete(
            self.study,
            held.trial,
            self.spec,
            held.reporter,
            metrics=metrics,
            attrs=attrs,
            weights=lambda: trainer.member_model(slot),
            artifact_dir=self.artifact_dir,
        )
        self._leave(trainer, slot, state)

    def _top_up(self, group: list[Held]) -> list[Held]:
        """``group`` and the new trials of its kind that join it before it starts, up to K:
        the trainer has as many slots as members (an empty slot costs a member's compute,
        so a last group of 1 at K = 8 cost as much as 8)."""
        wanted = min(self.size - len(group), self.size - len(self._waiting))
        if wanted < 1 or self.should_stop():
            return group
        joined = list(group)
        for trial in self.claim(wanted):
            held = self._hold(trial)
            # Another method or architecture trains in a later population.
            (joined if held.group == group[0].group else self._waiting).append(held)
        return joined

    def _refill(self, trainer: PopulationTrainer, group: str) -> None:
        free = trainer.free_slots()
        # A new trial of another group waits for a later population: wait for K at most.
        wanted = min(len(free), self.size - len(self._waiting))
        if wanted < 1 or self.should_stop():
            return
        for trial in self.claim(wanted):
            held = self._hold(trial)
            if held.group == group and free:
                self._start(trainer, free.pop(0), held)
            else:  # another method or architecture: it trains in a later population
                self._waiting.append(held)

    def _leave(self, trainer: PopulationTrainer, slot: int, state: TrialState) -> None:
        held = self._training.pop(slot)
        trainer.remove(slot)
        self._end(held, state)

    def _end(self, held: Held, state: TrialState) -> None:
        self.states[held.trial.number] = state

    def _interrupt(self, held: list[Held], why: str) -> None:
        for h in held:
            self._end(h, interrupted(self.study, h.trial, h.reporter, why))
        self._training.clear()

    def _held_ids(self) -> list[int]:
        return [h.trial._trial_id for h in (*self._training.values(), *self._waiting)]


def _with_device(config: TrainConfig, device: str) -> TrainConfig:
    return dataclasses.replace(config, device=device)
