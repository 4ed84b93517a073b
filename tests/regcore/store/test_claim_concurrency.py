"""Claims racing each other: real threads with their own connections on PostgreSQL, real
processes on SQLite (one machine, as SQLite is used). Every claimer finishes what it claims
at once, so the queue moves under contention and every queued sweep is started mid-race.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from datetime import datetime
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event

import sqlalchemy as sa

from regcore.store import (
    claim_next_sweep,
    create_engine_for,
    finish_sweep,
    insert_sweep,
    list_sweeps,
    register_worker,
)

CLAIMERS = 4
SWEEPS = 30

Claim = tuple[str, datetime]


def claim_until_empty(url: str, start: threading.Barrier | None = None) -> list[Claim]:
    """Claim (and finish) until nothing is runnable; the (sweep id, started_at) claimed."""
    engine = create_engine_for(url, pool_size=1)
    try:
        worker = register_worker(engine, host="test", pid=os.getpid(), device="cpu")
        if start is not None:
            start.wait()
        claims: list[Claim] = []
        while (sweep := claim_next_sweep(engine, worker_id=worker.id)) is not None:
            assert sweep.status == "running"
            assert sweep.started_at is not None
            claims.append((sweep.id, sweep.started_at))
            finish_sweep(engine, sweep.id, "completed")
        return claims
    finally:
        engine.dispose()


def _process_main(url: str, start: Event, out: Queue[list[Claim] | str]) -> None:
    start.wait()
    try:
        out.put(claim_until_empty(url))
    except BaseException as error:  # the parent reports it rather than waiting for a result
        out.put(f"{type(error).__name__}: {error}")
        raise


def run_in_threads(url: str) -> list[list[Claim]]:
    start = threading.Barrier(CLAIMERS)
    results: list[list[Claim] | BaseException] = [[] for _ in range(CLAIMERS)]

    def main(i: int) -> None:
        try:
            results[i] = claim_until_empty(url, start)
        except BaseException as error:  # reported by the test, not lost in the thread
            results[i] = error

    threads = [threading.Thread(target=main, args=(i,)) for i in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"claims raised: {errors!r}"
    return [r for r in results if not isinstance(r, BaseException)]


def run_in_processes(url: str) -> list[list[Claim]]:
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    processes = [
        context.Process(target=_process_main, args=(url, start, out)) for _ in range(CLAIMERS)
    ]
    for process in processes:
        process.start()
    start.set()
    results = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    errors = [r for r in results if isinstance(r, str)]
    assert not errors, f"claims raised: {errors}"
    assert [p.exitcode for p in processes] == [0] * CLAIMERS
    return [r for r in results if not isinstance(r, str)]


def test_concurrent_claims_start_each_queued_sweep_exactly_once(
    engine: sa.Engine, url: str
) -> None:
    for i in range(SWEEPS):
        insert_sweep(engine, spec_json={}, name=f"s{i:02}", priority=i % 3)
    racing = run_in_threads if engine.dialect.name == "postgresql" else run_in_processes
    results = racing(url)

    sweeps = {s.id: s for s in list_sweeps(engine, limit=SWEEPS)[0]}
    assert {s.status for s in sweeps.values()} == {"completed"}
    claims = [claim for result in results for claim in result]
    assert {sweep_id for sweep_id, _ in claims} == set(sweeps)
    # A second "started" transition would leave some claimer holding a started_at that
    # differs from the one stored (its own, overwritten or never written).
    for sweep_id, started_at in claims:
        assert started_at == sweeps[sweep_id].started_at, sweep_id


def claim_the_running_sweep(url: str, start: threading.Barrier, rounds: int) -> list[str | None]:
    """Claim ``rounds`` times without finishing anything: the ids claimed (None: nothing)."""
    engine = create_engine_for(url, pool_size=1)
    try:
        worker = register_worker(engine, host="test", pid=os.getpid(), device="cpu")
        start.wait()
        claimed = []
        for _ in range(rounds):
            sweep = claim_next_sweep(engine, worker_id=worker.id)
            claimed.append(None if sweep is None else sweep.id)
        return claimed
    finally:
        engine.dispose()


def test_a_running_sweep_is_claimed_by_every_claimer_at_once(engine: sa.Engine, url: str) -> None:
    """A sweep many workers share: no claimer finds nothing because another is claiming it
    (as a row lock that claimers skip would make them, and then wait a poll for nothing)."""
    sweep_id = insert_sweep(engine, spec_json={}, name="shared").id
    start = threading.Barrier(CLAIMERS)
    results: list[list[str | None] | BaseException] = [[] for _ in range(CLAIMERS)]

    def main(i: int) -> None:
        try:
            results[i] = claim_the_running_sweep(url, start, rounds=50)
        except BaseException as error:  # reported by the test, not lost in the thread
            results[i] = error

    threads = [threading.Thread(target=main, args=(i,)) for i in range(CLAIMERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not [r for r in results if isinstance(r, BaseException)], results
    claims = [c for r in results if not isinstance(r, BaseException) for c in r]
    assert claims == [sweep_id] * (CLAIMERS * 50)
    (sweep,) = list_sweeps(engine, limit=2)[0]
    assert sweep.status == "running"
