"""What a worker claims of a sweep it holds: the search's next trials under the exact
budget, then the confirmation's (:mod:`regcore.confirm`), or the points of a path
(:mod:`regcore.worker.path`). The claims themselves are the store's (:func:`claim_trials`);
:class:`HeldSweeps` keeps what a worker opens once per sweep (its study, population),
and :class:`Buildable` which sweeps it can claim at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import sqlalchemy as sa

from regcore.confirm import next_confirmation
from regcore.spec import SpecError, SweepSpec, parse_spec
from regcore.spec._algorithms import SAMPLERS
from regcore.store import (
    FixedPoint,
    StudyLock,
    SweepRow,
    TrialCounts,
    claim_trials,
    count_trials,
    record_cannot_run,
)
from regcore.sweeps.studies import open_study
from regcore.worker.path import FINISHED, take_path
from regcore.worker.population._size import choose_size

_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SweepClaims:
    """The claims of one sweep's ``study`` (under its ``lock``) as ``spec`` asks for them."""

    engine: sa.Engine
    study: optuna.Study
    spec: SweepSpec
    lock: StudyLock
    recover: Callable[[optuna.Study], None]  # ends trials of a study whose workers died

    @property
    def is_path(self) -> bool:
        return SAMPLERS[self.spec.sampler.name].path

    @property
    def _search_trials(self) -> int:
        # A path claims its points as fixed ones (:meth:`point`): none is asked of a sampler.
        return 0 if self.is_path else self.spec.budget.n_trials

    def path_due(self) -> bool:
        """Whether the sweep's path has points left to walk, and budget to walk them."""
        if not self.is_path or self.study.user_attrs.get(FINISHED):
            return False
        return self._counts().used < self.spec.budget.n_trials

    def take_path(self, worker_id: str, *, alive: Callable[[str], bool]) -> bool:
        """Whether ``worker_id`` walks the path now (no other live worker does)."""
        with self.lock.hold():
            return take_path(self.study, worker_id, alive=alive)

    def next(self, k: int, *, confirm: bool = True) -> list[optuna.Trial]:
        """Up to ``k`` search trials; once the search is over, a confirmation trial (unless
        ``confirm`` is False)."""
        after_search = self._confirm if confirm and self.spec.confirm.enabled else None
        return claim_trials(
            self.engine,
            self.study,
            n_trials=self._search_trials,
            lock=self.lock,
            k=k,
            after_search=after_search,
        )

    def refill(self, k: int) -> list[optuna.Trial]:
        """Up to ``k`` search trials for a population's free slots (never a confirmation)."""
        return self.next(k, confirm=False)

    def point(self, point: FixedPoint) -> optuna.Trial | None:
        """A path's ``point`` as a trial, if the budget has room for it."""
        trials = claim_trials(
            self.engine, self.study, n_trials=self.spec.budget.n_trials, lock=self.lock, fixed=point
        )
        return trials[0] if trials else None

    def over(self) -> bool:
        """Whether nothing of the sweep runs nor waits to run: it has ended."""
        counts = self._counts()
        return counts.running == 0 and counts.confirming == 0

    def _confirm(self) -> optuna.Trial | None:
        return next_confirmation(self.study, self.spec, recover=self.recover)

    def _counts(self) -> TrialCounts:
        return count_trials(self.engine, self.study.study_name)


class HeldSweeps:
    """What a worker opens once per sweep it claims: the study (created with its baseline
    trial by the first worker) and the population size (``execution.population``, ``auto``
    resolved once); its claims, under the study's lock on the worker's own engine."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        storage: optuna.storages.BaseStorage,
        device: str,
    ) -> None:
        self._engine, self._storage, self._device = engine, storage, device
        self._studies: dict[str, optuna.Study] = {}
        self._sizes: dict[str, int] = {}

    def study(self, sweep: SweepRow, spec: SweepSpec) -> optuna.Study:
        if sweep.id not in self._studies:
            self._studies[sweep.id] = open_study(
                spec, self._storage, user_attrs={"sweep_id": sweep.id}
            )
        return self._studies[sweep.id]

    def claims(
        self, sweep: SweepRow, spec: SweepSpec, *, recover: Callable[[optuna.Study], None]
    ) -> SweepClaims:
        return SweepClaims(
            engine=self._engine,
            study=self.study(sweep, spec),
            spec=spec,
            lock=StudyLock(engine=self._engine, study_name=sweep.study_name),
            recover=recover,
        )

    def size(self, sweep: SweepRow, spec: SweepSpec) -> int:
        """How many trials of the sweep the worker trains at once."""
        if sweep.id not in self._sizes:
            wanted = spec.execution.population
            size = choose_size(spec, device=self._device) if wanted == "auto" else wanted
            if wanted == "auto":
                _log.info("%s: population auto: %d trials at once", sweep.name, size)
            self._sizes[sweep.id] = size
        return self._sizes[sweep.id]


class Buildable:
    """Which sweeps a worker can run: those whose workload its registry builds (the spec
    parses). One it cannot (the plug-in missing, an older copy whose params differ) is left
    to workers that can, never ended: :meth:`accept` passes it over in the claim, and
    :meth:`tell` says why once per sweep, in the log, on the worker's row and on the sweep."""

    def __init__(self, *, engine: sa.Engine) -> None:
        self._engine = engine
        self._runs: set[str] = set()
        self._cannot: dict[str, tuple[str, str]] = {}  # sweep id → (workload, why)
        self._told: set[str] = set()

    @property
    def left(self) -> tuple[str, ...]:
        """The sweeps this worker has left to others, and said so."""
        return tuple(self._told)

    def accept(self, sweep: SweepRow) -> bool:
        if sweep.id in self._runs:
            return True
        if sweep.id in self._cannot:
            return False
        try:
            parse_spec(sweep.spec)
        except SpecError as exc:
            workload = str((sweep.spec.get("workload") or {}).get("name", "?"))
            self._cannot[sweep.id] = (workload, " ".join(str(exc).split()))
            return False
        self._runs.add(sweep.id)
        return True

    def tell(self, worker_id: str) -> None:
        """Record why this worker left the sweeps it has not said so of yet."""
        for sweep_id, (workload, reason) in self._cannot.items():
            if sweep_id in self._told:
                continue
            record_cannot_run(
                self._engine, worker_id, sweep_id=sweep_id, workload=workload, reason=reason
            )
            self._told.add(sweep_id)
            _log.warning(
                "sweep %s needs workload %r, which this worker cannot build (%s); left to "
                "workers that can",
                sweep_id,
                workload,
                reason,
            )
