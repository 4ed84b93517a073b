"""What a batch looks like from the API: each sweep's progress, best and estimated finish,
and, at submit, whether the batch fits before its deadline."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import optuna
import sqlalchemy as sa

from regcore.service import study_view
from regcore.service.schemas import BatchCreated, BatchEstimate, BatchOut, BatchSweep, SweepOut
from regcore.spec import SweepSpec
from regcore.store import (
    SWEEP_STATUSES,
    BatchRow,
    SweepRow,
    count_trials,
    list_workers,
    past_trial_seconds,
)

__all__ = ["BatchCreated", "BatchOut", "batch_out", "estimate"]


def batch_out(
    engine: sa.Engine,
    storage: optuna.storages.BaseStorage,
    cache: study_view.BestCache,
    batch: BatchRow,
    rows: list[SweepRow],
) -> BatchOut:
    sweeps = [_sweep(engine, storage, cache, row) for row in rows]
    status = dict.fromkeys(SWEEP_STATUSES, 0) | Counter(s.status for s in sweeps)
    return BatchOut(
        name=batch.name,
        owner=batch.owner,
        deadline=batch.deadline,
        created_at=batch.created_at,
        finished_at=batch.finished_at,
        status=status,
        sweeps=sweeps,
    )


def _sweep(
    engine: sa.Engine,
    storage: optuna.storages.BaseStorage,
    cache: study_view.BestCache,
    row: SweepRow,
) -> BatchSweep:
    counts = count_trials(engine, row.study_name)
    n_trials = int(row.spec.get("budget", {}).get("n_trials", 1))
    try:
        best, _pareto = cache.get(
            storage,
            sweep_id=row.id,
            study_name=row.study_name,
            count=counts.by_state["COMPLETE"],
        )
    except KeyError:  # deleted while the batch is read: shown without its best
        if study_view.exists(storage, row.study_name):
            raise
        best = None
    attrs = best.user_attrs if best is not None else {}
    return BatchSweep(
        **SweepOut.of(row).model_dump(),
        workload=str(row.spec.get("workload", {}).get("name", "?")),
        progress=study_view.progress(counts, n_trials=n_trials),
        best_value=best.values[0] if best is not None and best.values else None,
        best_method=attrs.get("method"),
        best_l1=attrs.get("l1"),
        best_l2=attrs.get("l2"),
        estimated_finish=_finish(row, counts.finished, n_trials),
    )


def _finish(row: SweepRow, finished: int, n_trials: int) -> datetime | None:
    if row.is_final:
        return row.finished_at
    if row.started_at is None or finished == 0:
        return None
    elapsed = datetime.now(UTC) - row.started_at
    return row.started_at + elapsed * (n_trials / finished)


def estimate(
    engine: sa.Engine, specs: list[SweepSpec], *, deadline: datetime | None
) -> BatchEstimate:
    """Trials × the median past trial time of each workload, shared by the live workers."""
    workers = len(list_workers(engine))
    workloads = sorted({s.workload.name for s in specs})
    seconds = {w: past_trial_seconds(engine, w) for w in workloads}
    trials = sum(s.budget.n_trials for s in specs)
    known = sum(s.budget.n_trials * (seconds[s.workload.name] or 0.0) for s in specs)
    needed = known / workers if workers else None
    available = None if deadline is None else (deadline - datetime.now(UTC)).total_seconds()
    unknown = [w for w in workloads if seconds[w] is None]
    warnings = []
    if not workers:
        warnings.append("no worker is registered: the batch waits until one starts")
    if unknown:
        warnings.append(
            f"no past trials of {', '.join(unknown)}: the estimate leaves those sweeps out"
        )
    fits = None
    if needed is not None and available is not None:
        fits = needed <= available
        if not fits:
            warnings.append(
                f"it will not fit: about {_span(needed)} of trials on {workers} worker(s), "
                f"but the deadline is {_span(available)} away; add workers, cut n_trials "
                "or move the deadline"
            )
    return BatchEstimate(
        workers=workers,
        trials=trials,
        trial_seconds=seconds,
        needed_s=needed,
        available_s=available,
        fits=fits if not unknown else (False if fits is False else None),
        warnings=warnings,
    )


def _span(seconds: float) -> str:
    if seconds < 0:
        return "already past"
    return str(timedelta(seconds=round(seconds)))
