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
from regcore.store._engine import create_engine_and_storage, create_engine_for
from regcore.store._locks import StudyLock
from regcore.store._migrate import VERSION_TABLE, current_revision, head_revision, upgrade_database
from regcore.store._optuna import (
    create_storage,
    create_study_with_attrs,
    set_user_attrs,
    sqlite_path,
)
from regcore.store._outbox import (
    OutboxRow,
    claim_outbox_event,
    freeze_outbox_body,
    list_outbox_events,
    record_outbox_attempt,
)
from regcore.store._queue import (
    FixedPoint,
    claim_next_sweep,
    claim_trials,
    expire_sweeps,
    finish_sweep,
)
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
from regcore.store._tables import (
    FINAL_STATUSES,
    OUTBOX_KINDS,
    RUNNABLE_STATUSES,
    SWEEP_STATUSES,
    WORKER_STATUSES,
)
from regcore.store._trials import (
    TrialCounts,
    confirmation_study_name,
    count_trials,
    count_trials_by_study,
    orphaned_trials,
    studies_without_sweep,
)
from regcore.store._workers import (
    deregister_worker,
    heartbeat_worker,
    is_live_worker,
    list_workers,
    record_cannot_run,
    register_worker,
    stale_workers,
)

__all__ = [
    "FINAL_STATUSES",
    "OUTBOX_KINDS",
    "RUNNABLE_STATUSES",
    "SWEEP_STATUSES",
    "VERSION_TABLE",
    "WORKER_STATUSES",
    "BatchNotFoundError",
    "BatchRow",
    "FixedPoint",
    "OutboxRow",
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
    "claim_outbox_event",
    "claim_trials",
    "close_batch_if_done",
    "confirmation_study_name",
    "count_trials",
    "count_trials_by_study",
    "create_engine_and_storage",
    "create_engine_for",
    "create_storage",
    "create_study_with_attrs",
    "current_revision",
    "delete_batch",
    "delete_sweep",
    "deregister_worker",
    "expire_sweeps",
    "finish_sweep",
    "freeze_outbox_body",
    "get_batch",
    "get_sweep",
    "get_sweep_by_name",
    "head_revision",
    "heartbeat_worker",
    "insert_batch",
    "insert_sweep",
    "is_live_worker",
    "list_outbox_events",
    "list_sweeps",
    "list_workers",
    "orphaned_trials",
    "past_trial_seconds",
    "record_cannot_run",
    "record_outbox_attempt",
    "register_worker",
    "reopen_sweep",
    "request_cancel",
    "set_user_attrs",
    "sqlite_path",
    "stale_workers",
    "studies_without_sweep",
    "upgrade_database",
]
