"""The queue: which sweep a worker gets next, and how sweeps end."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import optuna
import pytest
import sqlalchemy as sa
from optuna.distributions import FloatDistribution

from regcore.store import (
    FixedPoint,
    StudyLock,
    SweepNotFoundError,
    WorkerNotFoundError,
    claim_next_sweep,
    claim_trials,
    count_trials,
    create_storage,
    expire_sweeps,
    finish_sweep,
    get_sweep,
    get_sweep_by_name,
    insert_sweep,
    list_workers,
    record_cannot_run,
    register_worker,
    request_cancel,
)


def add(engine: sa.Engine, name: str, **kwargs: Any) -> str:
    return insert_sweep(engine, spec_json={"name": name}, name=name, **kwargs).id


@pytest.fixture
def worker_id(engine: sa.Engine) -> str:
    return register_worker(engine, host="test", pid=os.getpid(), device="cpu").id


def get_sweep_id(engine: sa.Engine, name: str) -> str:
    return get_sweep_by_name(engine, name).id


def claimed(engine: sa.Engine, worker_id: str) -> str | None:
    sweep = claim_next_sweep(engine, worker_id=worker_id)
    return None if sweep is None else sweep.name


def test_claim_picks_priority_then_fifo(engine: sa.Engine, worker_id: str) -> None:
    for submitted, priority in [("low", 0), ("high-1", 5), ("mid", 1), ("high-2", 5)]:
        add(engine, submitted, priority=priority)
    order: list[str] = []
    while (name := claimed(engine, worker_id)) is not None:
        order.append(name)
        finish_sweep(engine, get_sweep_id(engine, name), "completed")
    assert order == ["high-1", "high-2", "mid", "low"]


def test_claim_starts_a_queued_sweep_once_and_keeps_sharing_it(
    engine: sa.Engine, worker_id: str
) -> None:
    sweep_id = add(engine, "only")
    first = claim_next_sweep(engine, worker_id=worker_id)
    second = claim_next_sweep(engine, worker_id=worker_id)
    assert first is not None
    assert second is not None
    assert (first.id, first.status) == (sweep_id, "running")
    assert first.started_at is not None
    assert second == first == get_sweep(engine, sweep_id)
    [worker] = list_workers(engine)
    assert (worker.current_sweep_id, worker.status) == (sweep_id, "busy")


def test_claim_skips_cancelled_and_past_deadline_sweeps(engine: sa.Engine, worker_id: str) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    future = datetime.now(UTC) + timedelta(hours=1)
    request_cancel(engine, add(engine, "cancelled", priority=9))
    running_cancelled = add(engine, "running-cancelled", priority=8)
    claim_next_sweep(engine, worker_id=worker_id)
    request_cancel(engine, running_cancelled)
    add(engine, "expired", priority=7, deadline=past)
    add(engine, "in-time", priority=1, deadline=future)
    assert claimed(engine, worker_id) == "in-time"


def test_claim_skips_excluded_sweeps(engine: sa.Engine, worker_id: str) -> None:
    full, other = add(engine, "full", priority=5), add(engine, "other")
    assert claimed(engine, worker_id) == "full"
    sweep = claim_next_sweep(engine, worker_id=worker_id, exclude={full})
    assert sweep is not None
    assert sweep.id == other
    assert claim_next_sweep(engine, worker_id=worker_id, exclude=[full, other]) is None


def test_claim_of_one_sweep_never_gives_another(engine: sa.Engine, worker_id: str) -> None:
    mine, urgent = add(engine, "mine"), add(engine, "urgent", priority=9)
    sweep = claim_next_sweep(engine, worker_id=worker_id, only=mine)
    assert sweep is not None
    assert (sweep.id, sweep.status) == (mine, "running")
    assert claim_next_sweep(engine, worker_id=worker_id, only=mine, exclude={mine}) is None
    finish_sweep(engine, mine, "completed")
    assert claim_next_sweep(engine, worker_id=worker_id, only=mine) is None
    assert get_sweep(engine, urgent).status == "queued"


def test_claim_passes_over_a_sweep_the_worker_cannot_build_untouched(
    engine: sa.Engine, worker_id: str
) -> None:
    alien, mine = add(engine, "alien", priority=9), add(engine, "mine")
    sweep = claim_next_sweep(engine, worker_id=worker_id, accept=lambda s: s.id != alien)
    assert sweep is not None
    assert sweep.id == mine
    assert get_sweep(engine, alien).status == "queued"  # not started, not failed
    assert claim_next_sweep(engine, worker_id=worker_id, accept=lambda s: False) is None


def test_a_worker_that_cannot_build_a_sweep_says_why_until_one_that_can_claims_it(
    engine: sa.Engine, worker_id: str
) -> None:
    sweep_id = add(engine, "needs-a-plugin")
    why = "unknown workload 'my_cnn'; choose one of digits_mlp, ..."
    noted = record_cannot_run(engine, worker_id, sweep_id=sweep_id, workload="my_cnn", reason=why)
    assert noted is True
    [me] = list_workers(engine)
    assert me.cannot_run == {"my_cnn": why}
    assert get_sweep(engine, sweep_id).note == (
        f"waiting for a worker that can run workload 'my_cnn': worker {worker_id} on test "
        f"cannot ({why})"
    )
    able = register_worker(engine, host="gpu-box", pid=1, device="cuda").id
    claimed_sweep = claim_next_sweep(engine, worker_id=able)
    assert claimed_sweep is not None
    assert (claimed_sweep.id, claimed_sweep.note) == (sweep_id, None)
    assert get_sweep(engine, sweep_id).note is None
    # While a worker runs it, another that cannot says so on its own row only.
    other = add(engine, "other")
    assert not record_cannot_run(engine, worker_id, sweep_id=sweep_id, workload="x", reason="y")
    assert get_sweep(engine, sweep_id).note is None
    assert get_sweep(engine, other).note is None


def test_claim_trials_asks_until_the_budget_is_used(engine: sa.Engine, url: str) -> None:
    storage = create_storage(url)
    study = optuna.create_study(study_name=f"budget-{uuid.uuid4().hex[:8]}", storage=storage)
    lock = StudyLock(engine=engine, study_name=study.study_name)
    try:
        first, second = claim_trials(engine, study, n_trials=4, lock=lock, k=2)
        study.tell(first, 0.5)
        (interrupted,) = claim_trials(engine, study, n_trials=4, lock=lock)
        # A trial failed for no fault of its point (final_failure false) gives its slot back.
        interrupted.set_user_attr("final_failure", False)
        study.tell(interrupted, state=optuna.trial.TrialState.FAIL)
        # 1 done + 1 running: room for 2 of the 5 asked for, then none.
        assert len(claim_trials(engine, study, n_trials=4, lock=lock, k=5)) == 2
        assert claim_trials(engine, study, n_trials=4, lock=lock, k=3) == []
        assert count_trials(engine, study.study_name).used == 4
        assert second.number == 1
    finally:
        storage.engine.dispose()


def test_a_fixed_point_keeps_its_reserve_and_never_falls_back_to_the_sampler(
    engine: sa.Engine, url: str
) -> None:
    storage = create_storage(url)
    study = optuna.create_study(study_name=f"fixed-{uuid.uuid4().hex[:8]}", storage=storage)
    lock = StudyLock(engine=engine, study_name=study.study_name)
    point = FixedPoint(
        params={"l2": 1e-3},
        distributions={"l2": FloatDistribution(1e-6, 1e-1, log=True)},
        user_attrs={"path_step": 1},
        reserve=2,  # two trials of budget must be left after it
    )
    try:
        (first,) = claim_trials(engine, study, n_trials=4, lock=lock, fixed=point)
        assert (first.params, first.user_attrs) == ({"l2": 1e-3}, {"path_step": 1})
        study.tell(first, 0.3)
        assert len(claim_trials(engine, study, n_trials=4, lock=lock, fixed=point)) == 1
        assert claim_trials(engine, study, n_trials=4, lock=lock, fixed=point) == []
        assert len(study.trials) == 2  # room for 2, no more than its reserve: nothing asked
        plain = FixedPoint(params={}, distributions={}, user_attrs={"path_retrain": 0})
        assert len(claim_trials(engine, study, n_trials=4, lock=lock, fixed=plain)) == 1
    finally:
        storage.engine.dispose()


def test_a_retry_left_waiting_after_the_budget_is_superseded(engine: sa.Engine, url: str) -> None:
    storage = create_storage(url)
    study = optuna.create_study(study_name=f"retry-{uuid.uuid4().hex[:8]}", storage=storage)
    lock = StudyLock(engine=engine, study_name=study.study_name)
    try:
        (running,) = claim_trials(engine, study, n_trials=2, lock=lock)
        study.enqueue_trial({}, user_attrs={"retry_of": 0})  # queued while 2 use the budget
        (last,) = claim_trials(engine, study, n_trials=2, lock=lock)
        assert last.user_attrs == {"retry_of": 0}  # a waiting trial goes first...
        study.enqueue_trial({}, user_attrs={"retry_of": 1})
        assert claim_trials(engine, study, n_trials=2, lock=lock) == []  # ...while others run
        assert study.trials[-1].state == optuna.trial.TrialState.WAITING
        study.tell(running, 0.1)
        study.tell(last, 0.2)
        assert claim_trials(engine, study, n_trials=2, lock=lock) == []
        superseded = study.trials[-1]
        assert superseded.state == optuna.trial.TrialState.FAIL  # ...and never runs
        assert superseded.user_attrs["fail_reason"].startswith("superseded")
        assert count_trials(engine, study.study_name).used == 2  # it used no budget
    finally:
        storage.engine.dispose()


def test_claim_returns_none_when_nothing_is_runnable(engine: sa.Engine, worker_id: str) -> None:
    assert claim_next_sweep(engine, worker_id=worker_id) is None
    finish_sweep(engine, add(engine, "done"), "completed")
    assert claim_next_sweep(engine, worker_id=worker_id) is None


def test_claim_by_an_unregistered_worker_says_register(engine: sa.Engine) -> None:
    add(engine, "s")
    with pytest.raises(WorkerNotFoundError, match="register_worker"):
        claim_next_sweep(engine, worker_id="ghost")
    assert get_sweep(engine, get_sweep_id(engine, "s")).status == "queued"


def test_finish_only_moves_queued_or_running_sweeps(engine: sa.Engine, worker_id: str) -> None:
    sweep_id = add(engine, "s")
    claim_next_sweep(engine, worker_id=worker_id)
    assert finish_sweep(engine, sweep_id, "completed", error=None) is True
    assert finish_sweep(engine, sweep_id, "failed", error="late") is False
    sweep = get_sweep(engine, sweep_id)
    assert (sweep.status, sweep.error) == ("completed", None)
    assert sweep.finished_at is not None
    cancelled = add(engine, "c")
    request_cancel(engine, cancelled)
    assert finish_sweep(engine, cancelled, "completed") is False
    assert get_sweep(engine, cancelled).status == "cancelled"


def test_finish_refuses_a_non_final_status_and_unknown_ids(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="final one"):
        finish_sweep(engine, add(engine, "s"), "running")
    with pytest.raises(SweepNotFoundError):
        finish_sweep(engine, "nope", "completed")


def test_expire_ends_sweeps_past_their_deadline(engine: sa.Engine, worker_id: str) -> None:
    past = datetime.now(UTC) - timedelta(seconds=1)
    queued = add(engine, "queued", deadline=past)
    running = add(engine, "running", deadline=datetime.now(UTC) + timedelta(seconds=60))
    claim_next_sweep(engine, worker_id=worker_id)
    with engine.begin() as connection:  # its deadline passes while it runs
        connection.execute(
            sa.text("UPDATE sweeps SET deadline = :past WHERE id = :id"),
            {"past": past.replace(tzinfo=None), "id": running},
        )
    later = add(engine, "later", deadline=datetime.now(UTC) + timedelta(hours=1))
    assert sorted(expire_sweeps(engine)) == sorted([queued, running])
    assert [get_sweep(engine, i).status for i in (queued, running, later)] == [
        "deadline_reached",
        "deadline_reached",
        "queued",
    ]
    assert expire_sweeps(engine) == []
