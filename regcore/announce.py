"""When a sweep ends: its webhook, and its batch's once the batch's last sweep has ended.

Whoever ends a sweep calls :func:`announce_end` once (``finish_sweep`` and ``expire_sweeps``
say who did; the service does for a cancel). Webhooks go out on background threads, retried
with backoff; one that fails is logged and never blocks a worker or a request.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import optuna
import sqlalchemy as sa

from regcore.export import iso_utc, jsonable
from regcore.notify import notify_in_background, sweep_summary
from regcore.store import (
    SweepRow,
    batch_sweeps,
    close_batch_if_done,
    get_batch,
    get_sweep,
)

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
