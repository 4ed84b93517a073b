"""Trial claims racing each other on one study: real processes, each with its own engine and
storage as a worker has them, claiming batches of trials, sampling them, finishing or
interrupting them (an interrupted trial gives its budget back and is queued again, as
recovery does). However they interleave, exactly ``n_trials`` trials finish; and the
sampler runs outside the claim lock, so a slow sampler holds no other claimer up."""

from __future__ import annotations

import multiprocessing
import random
import threading
import uuid
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import optuna
import pytest
import sqlalchemy as sa
from optuna.trial import FrozenTrial, TrialState

from regcore.store import (
    StudyLock,
    claim_trials,
    count_trials,
    create_engine_and_storage,
    create_storage,
    set_user_attrs,
)
from tests.waiting import wait_until

CLAIMERS = 6
N_TRIALS = 60


def claim_until_done(url: str, name: str, seed: int, start: Event) -> tuple[int, int]:
    """Claim (k = 1..3 at a time) and finish trials until the study's budget is used and none
    runs; (trials finished, trials interrupted) by this claimer."""
    engine, storage = create_engine_and_storage(url, pool_size=2)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        lock = StudyLock(engine=engine, study_name=name)
        rng, finished, interrupted = random.Random(seed), 0, 0
        start.wait()
        while True:
            trials = claim_trials(engine, study, n_trials=N_TRIALS, lock=lock, k=rng.randint(1, 3))
            if not trials:
                if count_trials(engine, name).running == 0:
                    return finished, interrupted
                threading.Event().wait(0.01)  # others run the last trials; one may come back
                continue
            for trial in trials:
                x = trial.suggest_float("x", 0.0, 1.0)
                if rng.random() < 0.2:  # cut off: its slot is free again, its point queued
                    set_user_attrs(trial, {"final_failure": False})
                    study.tell(trial, state=TrialState.FAIL)
                    study.enqueue_trial({"x": x}, user_attrs={"retry_of": trial.number})
                    interrupted += 1
                else:
                    study.tell(trial, x)
                    finished += 1
    finally:
        storage.engine.dispose()
        engine.dispose()


def _process_main(url: str, name: str, seed: int, start: Event, out: Queue[object]) -> None:
    try:
        out.put(claim_until_done(url, name, seed, start))
    except BaseException as error:  # the parent reports it rather than waiting for a result
        out.put(f"{type(error).__name__}: {error}")
        raise


def test_racing_claimers_finish_exactly_the_budget(url: str) -> None:
    name = f"race-{uuid.uuid4().hex[:8]}"
    storage = create_storage(url)
    optuna.create_study(study_name=name, storage=storage)
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    processes = [
        context.Process(target=_process_main, args=(url, name, seed, start, out))
        for seed in range(CLAIMERS)
    ]
    for process in processes:
        process.start()
    start.set()
    results = [out.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors = [r for r in results if isinstance(r, str)]
    assert not errors, f"claims raised: {errors}"

    trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    storage.engine.dispose()
    by_state = {s: [t for t in trials if t.state == s] for s in TrialState}
    assert len(by_state[TrialState.COMPLETE]) == N_TRIALS
    assert sum(f for f, _ in results) == N_TRIALS  # type: ignore[misc]
    # A retry queued after another claimer took the slot its trial gave back is failed
    # as superseded once the budget is used, rather than left waiting.
    superseded = [
        t
        for t in by_state[TrialState.FAIL]
        if t.user_attrs.get("fail_reason", "").startswith("superseded")
    ]
    interrupted = sum(i for _, i in results)  # type: ignore[misc]
    assert len(by_state[TrialState.FAIL]) == interrupted + len(superseded)
    assert by_state[TrialState.RUNNING] == by_state[TrialState.WAITING] == []
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert len([p for p in processes if p.exitcode == 0]) == CLAIMERS


class _Grid(optuna.samplers.GridSampler):
    """Optuna's grid without its ``study.stop()`` once covered, as regsweep's grid is."""

    def after_trial(self, *args: object) -> None:
        pass


class _PausingGrid(_Grid):
    """A grid of two points that waits, once it has read which are unvisited, until
    ``released``: the moment another claimer could read the same."""

    def __init__(self, read: threading.Event, released: threading.Event) -> None:
        super().__init__({"x": [0.0, 1.0]}, seed=0)
        self.read, self.released = read, released

    def _get_unvisited_grid_ids(self, study: optuna.Study) -> list[int]:
        unvisited: list[int] = super()._get_unvisited_grid_ids(study)  # type: ignore[misc]
        self.read.set()
        self.released.wait(timeout=5)
        return unvisited


def test_a_grid_claim_waits_for_the_point_taken_before_it(url: str) -> None:
    """Two claims of a two-point grid, the second made while the first has read the unvisited
    points but not yet taken one: the second waits for it (the trials are opened under the
    lock), so it reads one point left and takes that. Opened outside the lock, both would
    read both points and, with the same seed, take the same."""
    name = f"grid-two-{uuid.uuid4().hex[:8]}"
    engines = [create_engine_and_storage(url, pool_size=2) for _ in range(2)]
    (engine_a, storage_a), (engine_b, storage_b) = engines
    # Two trials off the grid first (as a sweep's baseline is): Optuna's grid gives trial
    # number i point i while i < its size, and reads the unvisited points only after that.
    before = optuna.create_study(
        study_name=name, storage=storage_a, sampler=_Grid({"x": [0.0, 1.0]})
    )
    for x in (0.25, 0.75):
        before.enqueue_trial({"x": x})
        trial = before.ask()
        before.tell(trial, trial.suggest_float("x", 0.0, 1.0))
    read, released = threading.Event(), threading.Event()
    study_a = optuna.load_study(
        study_name=name, storage=storage_a, sampler=_PausingGrid(read, released)
    )
    study_b = optuna.load_study(
        study_name=name, storage=storage_b, sampler=_Grid({"x": [0.0, 1.0]}, seed=0)
    )
    got: list[optuna.Trial] = []

    def claim(engine: sa.Engine, study: optuna.Study) -> None:
        lock = StudyLock(engine=engine, study_name=name)
        got.extend(claim_trials(engine, study, n_trials=4, lock=lock, open_in_order=True))

    first = threading.Thread(target=claim, args=(engine_a, study_a))
    second = threading.Thread(target=claim, args=(engine_b, study_b))
    try:
        first.start()
        assert read.wait(timeout=20), "the first claim never opened its trial"
        second.start()
        second.join(timeout=1.0)  # waits for the first claim's lock
        released.set()
        first.join(timeout=30)
        second.join(timeout=30)
        assert len(got) == 2
        assert sorted(trial.suggest_float("x", 0.0, 1.0) for trial in got) == [0.0, 1.0]
    finally:
        released.set()
        first.join(timeout=30)
        second.join(timeout=30)
        for engine, storage in engines:
            storage.engine.dispose()
            engine.dispose()


class _SlowSampler(optuna.samplers.RandomSampler):
    """Waits in ``before_trial`` (which ``Trial`` runs as it is made) until ``released``."""

    def __init__(self, released: threading.Event) -> None:
        super().__init__(seed=0)
        self.released, self.waited = released, False

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self.waited = self.released.wait(timeout=20)


def test_sampling_runs_outside_the_claim_lock(url: str) -> None:
    """While one claimer's sampler is busy with its trial, another claims one: were the
    sampler under the lock, the second would wait for the first, which waits for it."""
    name = f"outside-{uuid.uuid4().hex[:8]}"
    engine, storage = create_engine_and_storage(url, pool_size=2)
    other_engine, other_storage = create_engine_and_storage(url, pool_size=2)
    optuna.create_study(study_name=name, storage=storage)
    released = threading.Event()
    slow = _SlowSampler(released)
    slow_study = optuna.load_study(study_name=name, storage=storage, sampler=slow)
    other_study = optuna.load_study(study_name=name, storage=other_storage)
    got: list[optuna.Trial] = []
    claimer = threading.Thread(
        target=lambda: got.extend(
            claim_trials(
                engine, slow_study, n_trials=4, lock=StudyLock(engine=engine, study_name=name)
            )
        )
    )
    try:
        claimer.start()
        lock = StudyLock(engine=other_engine, study_name=name)

        wait_until(
            lambda: count_trials(other_engine, name).running == 1, 20, "the first reservation"
        )
        (second,) = claim_trials(other_engine, other_study, n_trials=4, lock=lock)
        released.set()
        claimer.join(timeout=30)
        assert slow.waited, "the first claim's sampler ran only after the second claim"
        (first,) = got
        assert {first.number, second.number} == {0, 1}
    finally:
        released.set()
        claimer.join(timeout=30)
        for e in (engine, other_engine, storage.engine, other_storage.engine):
            e.dispose()


def test_a_worker_engine_shares_its_pool_with_optuna_on_postgresql(url: str) -> None:
    engine, storage = create_engine_and_storage(url, pool_size=2)
    try:
        if engine.dialect.name == "postgresql":
            assert storage.engine is engine
            assert isinstance(engine.pool, sa.pool.QueuePool)
            assert (engine.pool.size(), engine.pool._max_overflow) == (2, 0)
        else:  # a SQLite file: Optuna's sessions keep their own engine and its transactions
            assert storage.engine is not engine
    finally:
        storage.engine.dispose()
        engine.dispose()
    with pytest.raises(ValueError, match="pool_size must be at least 2, but got pool_size=1"):
        create_engine_and_storage(url, pool_size=1)
