"""What a worker runs next, decided in one place (:class:`Planner`), in the order it happens:

1. claim a sweep (:func:`regcore.store.claim_next_sweep`: highest priority first), passing
   over those whose trials are all taken for now and those this worker cannot build
   (:class:`~regcore.worker.buildable.Buildable`);
2. end it instead if its spec clashes with its study or its ``timeout_s`` has passed; end
   the trials of its study whose workers died (their retries are queued);
3. of that sweep: a path's walk when the sweep walks a path and no other live worker does
   (:func:`take_path`); else up to K search trials under the exact budget; once the search
   is over, a confirmation trial (:func:`regcore.confirm.next_confirmation`); once nothing
   runs nor waits, the sweep's end.

The claims themselves are the store's (:func:`regcore.store.claim_trials`, atomic under the
study's lock); :class:`HeldSweeps` keeps what a worker opens once per sweep (its study, its
population size). The daemon only carries the decision out.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

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
    claim_next_sweep,
    claim_trials,
    count_trials,
    is_live_worker,
)
from regcore.sweeps.studies import SpecMismatchError, open_study
from regcore.trial_kinds import rules_of
from regcore.worker import recovery
from regcore.worker.buildable import Buildable
from regcore.worker.path import FINISHED, HOLDER
from regcore.worker.population._size import choose_size

_log = logging.getLogger(__name__)


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
            open_in_order=SAMPLERS[self.spec.sampler.name].opens_in_order,
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


@dataclass(frozen=True, kw_only=True)
class Work:
    """Trials to train now: ``single`` (one, or a confirmation's with its own seed),
    ``population`` (K at once, ``claims.refill`` filling free slots) or ``path`` (the
    sweep's walk, its points claimed one at a time through ``claims.point``)."""

    how: Literal["single", "population", "path"]
    sweep: SweepRow
    claims: SweepClaims
    trials: list[optuna.Trial] = field(default_factory=list)
    size: int = 1


@dataclass(frozen=True)
class End:
    """The sweep ends, with this status (and why, when it failed)."""

    sweep_id: str
    status: str
    error: str | None = None


#: What :meth:`Planner.next` decides: work, a sweep's end, ``"later"`` (the sweep claimed
#: has nothing for this worker now: others run its last trials or walk its path), or None
#: (no sweep to claim).
Next = Work | End | Literal["later"] | None


class Planner:
    """A worker's decisions of what runs next (see the module)."""

    def __init__(
        self,
        *,
        engine: sa.Engine,
        storage: optuna.storages.RDBStorage,
        device: str,
        grace_s: float,
        max_retries: int | None,
        idle_poll_s: float,
        only: str | None = None,
    ) -> None:
        self._engine, self._storage = engine, storage
        self._grace_s, self._max_retries, self._idle_poll_s = grace_s, max_retries, idle_poll_s
        self._only = only
        self._held = HeldSweeps(engine=engine, storage=storage, device=device)
        self._buildable = Buildable(engine=engine)
        self._later: dict[str, float] = {}  # sweep id → until when to pass it over

    def next(self, worker_id: str) -> Next:
        """Claim what ``worker_id`` runs next; raises the store's ``WorkerNotFoundError``
        when the worker was removed as stale."""
        now = time.monotonic()
        self._later = {k: v for k, v in self._later.items() if v > now}
        sweep = claim_next_sweep(
            self._engine,
            worker_id=worker_id,
            exclude=(*self._later, *self._buildable.left),
            only=self._only,
            accept=self._buildable.accept,
        )
        self._buildable.tell(worker_id)
        if sweep is None:
            return None
        try:
            spec = parse_spec(sweep.spec)  # it parsed when claimed (Buildable.accept)
            study = self._held.study(sweep, spec)
        except (SpecError, SpecMismatchError) as exc:
            # It clashes with its study: ended with the reason, not failed on round after round.
            return End(sweep.id, "failed", str(exc))
        if _timed_out(sweep, spec):
            return End(sweep.id, "deadline_reached")
        self.recover(study)
        size = self._held.size(sweep, spec)
        claims = self._held.claims(sweep, spec, recover=self.recover)
        if claims.path_due():
            if not claims.take_path(worker_id, alive=self._alive):
                return self._pass_over(sweep)  # another live worker walks it
            return Work(how="path", sweep=sweep, claims=claims)
        trials = claims.next(size)
        if not trials:
            return End(sweep.id, "completed") if claims.over() else self._pass_over(sweep)
        single = size == 1 or not rules_of(trials[0]).in_search_study  # a confirmation's seed
        how: Literal["single", "population"] = "single" if single else "population"
        return Work(how=how, sweep=sweep, claims=claims, trials=trials, size=size)

    def recover(self, study: optuna.Study) -> None:
        """End ``study``'s trials whose workers died (their retries are queued)."""
        recovery.recover(
            self._engine, self._storage, study, grace_s=self._grace_s, max_retries=self._max_retries
        )

    def _pass_over(self, sweep: SweepRow) -> Literal["later"]:
        """Work on the next sweep meanwhile."""
        self._later[sweep.id] = time.monotonic() + self._idle_poll_s
        return "later"

    def _alive(self, worker_id: str) -> bool:
        return is_live_worker(self._engine, worker_id, grace_s=self._grace_s)


def _timed_out(sweep: SweepRow, spec: SweepSpec) -> bool:
    if spec.budget.timeout_s is None or sweep.started_at is None:
        return False
    return datetime.now(UTC) >= sweep.started_at + timedelta(seconds=spec.budget.timeout_s)
