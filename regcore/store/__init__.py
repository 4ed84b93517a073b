"""Persistence: Optuna's storage, the claim lock, and regsweep's own tables (sweeps, workers)
with their migrations and the queue.

Every function takes an ``Engine`` from :func:`create_engine_for` and returns frozen rows;
call :func:`upgrade_database` once per process start (it is idempotent and concurrency-safe).
"""

from regcore.store._batches import (
    batch_sweeps,
    close_batch_if_done,
    delete_batch,
    get_batch,
    insert_batch,
    past_trial_seconds,
)
from regcore.store._engine import create_engine_for
from regcore.store._locks import StudyLock
from regcore.store._migrate import VERSION_TABLE, current_revision, head_revision, upgrade_database
from regcore.store._optuna import create_storage, sqlite_path
from regcore.store._queue import claim_next_sweep, claim_trials, expire_sweeps, finish_sweep
from regcore.store._rows import (
    BatchNotFoundError,
    BatchRow,
    SweepNameTakenError,
    SweepNotFoundError,
    SweepRow,
    SweepStateError,
    WorkerNotFoundError,
    WorkerRow,
)
from regcore.store._sweeps import (
    delete_sweep,
    get_sweep,
    get_sweep_by_name,
    insert_sweep,
    list_sweeps,
    reopen_sweep,
    request_cancel,
)
from regcore.store._tables import FINAL_STATUSES, RUNNABLE_STATUSES, SWEEP_STATUSES, WORKER_STATUSES
from regcore.store._trials import TrialCounts, count_trials, count_trials_by_study, orphaned_trials
from regcore.store._workers import (
    deregister_worker,
    heartbeat_worker,
    list_workers,
    register_worker,
    stale_workers,
)

__all__ = [
    "FINAL_STATUSES",
    "RUNNABLE_STATUSES",
    "SWEEP_STATUSES",
    "VERSION_TABLE",
    "WORKER_STATUSES",
    "BatchNotFoundError",
    "BatchRow",
    "StudyLock",
    "SweepNameTakenError",
    "SweepNotFoundError",
    "SweepRow",
    "SweepStateError",
    "TrialCounts",
    "WorkerNotFoundError",
    "WorkerRow",
    "batch_sweeps",
    "claim_next_sweep",
    "claim_trials",
    "close_batch_if_done",
    "count_trials",
    "count_trials_by_study",
    "create_engine_for",
    "create_storage",
    "current_revision",
    "delete_batch",
    "delete_sweep",
    "deregister_worker",
    "expire_sweeps",
    "finish_sweep",
    "get_batch",
    "get_sweep",
    "get_sweep_by_name",
    "head_revision",
    "heartbeat_worker",
    "insert_batch",
    "insert_sweep",
    "list_sweeps",
    "list_workers",
    "orphaned_trials",
    "past_trial_seconds",
    "register_worker",
    "reopen_sweep",
    "request_cancel",
    "sqlite_path",
    "stale_workers",
    "upgrade_database",
]
