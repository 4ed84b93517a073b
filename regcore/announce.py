"""When a sweep ends: what it found (the ``sweep.finished`` event), sent to its webhook, and
its batch's ``batch.finished`` once the batch's last sweep has ended.

Whoever ends a sweep announces it once (``finish_sweep`` and ``expire_sweeps`` say who did):
a worker through :class:`Announcer`, the service with :func:`announce_end` for a cancel.
Delivery (HTTP, retries with backoff on background threads) is :mod:`regcore.notify`'s; a
webhook that fails is logged and never blocks a worker or a request.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.export import iso_utc, jsonable
from regcore.notify import notify_in_background
from regcore.results import TrialRow, best_rows
from regcore.store import (
    SweepRow,
    batch_sweeps,
    close_batch_if_done,
    finish_sweep,
    get_batch,
    get_sweep,
)
from regcore.studies import stored_spec

_log = logging.getLogger(__name__)


def announce_end(
    engine: sa.Engine, storage: optuna.storages.BaseStorage, sweep_id: str
) -> list[threading.Thread]:
    """Send the ended sweep's webhook, and its batch's if this sweep was the batch's last;
    the threads sending them (join them before a process exits to let them finish)."""
    sweep = get_sweep(engine, sweep_id)
    threads = []
    url = (sweep.spec.get("notify") or {}).get("webhook_url")
    if url:
        threads.append(notify_in_background(url, summary(storage, sweep)))
    if sweep.batch_name is not None and close_batch_if_done(engine, sweep.batch_name):
        batch = get_batch(engine, sweep.batch_name)
        _log.info("batch %s has ended", batch.name)
        if batch.webhook_url:
            payload = {
                "event": "batch.finished",
                "name": batch.name,
                "deadline": iso_utc(batch.deadline),
                "finished_at": iso_utc(batch.finished_at),
                "sweeps": [summary(storage, s) for s in batch_sweeps(engine, batch.name)],
            }
            threads.append(notify_in_background(batch.webhook_url, jsonable(payload)))
    return threads


def summary(storage: optuna.storages.BaseStorage, sweep: SweepRow) -> dict[str, Any]:
    """The ``sweep.finished`` event of ``sweep`` (without trials if its study is gone)."""
    fields: dict[str, Any] = {
        "sweep_id": sweep.id,
        "name": sweep.name,
        "status": sweep.status,
        "workload": (sweep.spec.get("workload") or {}).get("name"),
        "n_trials": (sweep.spec.get("budget") or {}).get("n_trials"),
        "finished_at": sweep.finished_at,
        "error": sweep.error,
    }
    try:
        study = optuna.load_study(study_name=sweep.study_name, storage=storage)
    except KeyError:
        bare: dict[str, Any] = jsonable({"event": "sweep.finished", **fields})
        return bare
    return sweep_summary(study, **fields)


def _row(row: TrialRow, *, multi: bool) -> dict[str, Any]:
    value: dict[str, Any] = {"values": list(row.values)} if multi else {"value": row.values[0]}
    return {
        "number": row.number,
        **value,
        "method": row.method,
        "l1": row.l1,
        "l2": row.l2,
        "lr": row.lr,
        "sparsity": row.sparsity,
        "regularizer": row.regularizer_line(),
    }


def sweep_summary(
    study: optuna.Study,
    *,
    sweep_id: str,
    name: str,
    status: str,
    workload: str | None = None,
    n_trials: int | None = None,
    finished_at: datetime | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The ``sweep.finished`` event of a sweep that ended, as a JSON-ready dict.

    ``workload`` and ``n_trials`` (the budget) default to what the study's ``spec`` user
    attribute says; ``finished_at`` (a naive one is read as UTC, as the store keeps it) to
    now. One objective: ``best`` (the best trial), ``by_method`` (the best of each method)
    and ``baseline`` (λ₁ = λ₂ = 0), with ``pareto`` None; two: ``pareto`` (the front) with
    the others None. Non-finite floats are None. The spec itself is left out: its webhook
    URL may carry a secret.
    """
    spec = stored_spec(study)
    if workload is None:
        workload = study.user_attrs.get("workload") or spec.get("workload", {}).get("name")
    if n_trials is None:
        n_trials = spec.get("budget", {}).get("n_trials")
    counts = {state.name: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] += 1
    multi = len(study.directions) > 1
    rows = best_rows(study)
    best = next((_row(r, multi=False) for r in rows if r.label == "best"), None)
    baseline = next((_row(r, multi=False) for r in rows if r.label.startswith("baseline")), None)
    by_method = [
        _row(r, multi=False)
        for r in rows
        if r.label not in {"best", "pareto"} and not r.label.startswith("baseline")
    ]
    front = sorted((r for r in rows if r.label == "pareto"), key=lambda r: r.number)
    pareto = [_row(r, multi=True) for r in front]
    summary: dict[str, Any] = jsonable(
        {
            "event": "sweep.finished",
            "sweep_id": sweep_id,
            "name": name,
            "study_name": study.study_name,
            "status": status,
            "error": error,
            "workload": workload,
            "n_trials": n_trials,
            "directions": [d.name.lower() for d in study.directions],
            "trials": counts,
            "best": best,
            "by_method": None if multi else by_method,
            "baseline": baseline,
            "pareto": pareto if multi else None,
            "finished_at": iso_utc(finished_at or datetime.now(UTC), naive_is_local=False),
        }
    )
    return summary


class Announcer:
    """A worker's side of a sweep's end: end it (if nobody else has), announce it once, and
    at exit give the webhooks still being sent a moment to go out."""

    def __init__(self, *, engine: sa.Engine, storage: optuna.storages.BaseStorage) -> None:
        self._engine = engine
        self._storage = storage
        self._threads: list[threading.Thread] = []

    def end(self, sweep_id: str, status: str, *, error: str | None = None) -> None:
        """Give the sweep its final ``status``, and announce it if this call ended it."""
        if finish_sweep(self._engine, sweep_id, status, error=error):
            self.announce(sweep_id)

    def announce(self, sweep_id: str) -> None:
        """Log a sweep's end and send its webhooks (and its batch's); never raises."""
        try:
            sweep = get_sweep(self._engine, sweep_id)
            _log.info("%s: %s", sweep.name, sweep.status)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads += announce_end(self._engine, self._storage, sweep_id)
        except Exception as exc:  # a message must never take the worker down
            _log.warning("could not announce the end of sweep %s: %s", sweep_id, exc)

    def wait(self, timeout_s: float) -> None:
        """Wait up to ``timeout_s`` in all for the webhooks being sent."""
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
