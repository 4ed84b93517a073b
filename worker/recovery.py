"""Trials that did not end on their own: ended with the reason, and queued again with the same
parameters.

Four ways a trial is cut off without a verdict on its point, none of which uses budget:

- the worker's own shutdown stopped it (``interrupted``): :func:`requeue` runs it again;
- the database went away while it ran, so its outcome may never have been written:
  :func:`settle` ends it once the database answers and runs it again, at once rather than
  after the grace period (it may never have had a heartbeat to go stale by);
- its worker lost it between asking for it and its first heartbeat: :func:`settle` too;
- its worker died (killed, its machine gone): its heartbeat goes stale and
  :func:`fail_stale` ends it, through :func:`settle`, after the grace period. A point whose
  trials lost their worker more than ``max_retries`` times is not run again: that failure
  is final (it may be the point that kills them).

Every one of them records ``fail_reason`` and ``final_failure`` before it ends, and its retry
``retry_of`` (the trial it repeats) and what the trial is (a baseline, a confirmation's seed:
:data:`regcore.trial_kinds.IDENTITY`), in the trial's own study: a confirmation trial's
retry is queued in the sweep's confirmation study.
"""

from __future__ import annotations

import logging

import optuna
import sqlalchemy as sa
from optuna.trial import FrozenTrial, TrialState

from regcore.store import orphaned_trials
from regcore.trial_kinds import IDENTITY, rules_of

_log = logging.getLogger(__name__)

#: User attribute: how many trials of this point lost their worker (a death, not an outage).
WORKERS_LOST = "workers_lost"


def requeue(study: optuna.Study, frozen: FrozenTrial, *, workers_lost: int | None = None) -> None:
    """Queue ``frozen``'s parameters again in its own study, marked as its retry and keeping
    what it is (a baseline still trains with λ = 0, a confirmation with its seed) and how
    many of its trials lost their worker. A path's trials are not queued: the path resumes
    instead (:mod:`regcore.worker.path`)."""
    if not rules_of(frozen).requeued:
        return
    attrs: dict[str, object] = {"retry_of": frozen.number}
    attrs |= {k: frozen.user_attrs[k] for k in IDENTITY if k in frozen.user_attrs}
    lost = frozen.user_attrs.get(WORKERS_LOST, 0) if workers_lost is None else workers_lost
    if lost:
        attrs[WORKERS_LOST] = lost
    # A trial cut off before its suggestions has only the parameters it was queued with.
    params = {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}
    study.enqueue_trial(params, user_attrs=attrs, skip_if_exists=False)


def settle(
    storage: optuna.storages.RDBStorage,
    study: optuna.Study,
    trial_id: int,
    *,
    why: str = "the database was unreachable",
    died: bool = False,
    max_retries: int | None = None,
) -> bool:
    """End a RUNNING trial that was cut off (see the module's docstring) and queue it anew;
    True if this call ended it.

    Nothing is left to do when its ``tell`` reached the database before the connection
    dropped, or another worker already ended it (and queued the retry). Otherwise it is
    failed as not final (it uses no budget) and its parameters run again; with ``died``
    (its worker is gone), only while fewer than ``max_retries`` of the point's trials lost
    their worker before, and as a final failure after.
    """
    frozen = storage.get_trial(trial_id)
    if frozen.state.is_finished():
        return False
    reason, final, lost = f"interrupted: {why}", False, frozen.user_attrs.get(WORKERS_LOST, 0)
    if died:
        lost += 1
        if max_retries is not None and lost > max_retries:
            reason += f"; not run again: {lost} of its trials lost their worker ({max_retries=})"
            final = True
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        storage.set_trial_user_attr(trial_id, "final_failure", final)
        # Two workers may settle one trial at once: only one changes its state.
        failed = storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        failed = False
    if not failed:
        return False
    _log.warning(
        "trial %d of %s was cut off (%s)%s",
        frozen.number,
        study.study_name,
        why,
        "" if final else "; running it again",
    )
    if not final:
        requeue(study, storage.get_trial(trial_id), workers_lost=lost)
    return True


def fail_stale(
    storage: optuna.storages.RDBStorage,
    study: optuna.Study,
    *,
    grace_s: float,
    max_retries: int | None,
) -> int:
    """End ``study``'s trials whose heartbeat has been silent for ``grace_s`` (their worker
    died) with the reason, and queue their retries; how many this call ended.

    In place of Optuna's ``fail_stale_trials`` and its retry callback, which fail the trial
    before anything can be recorded on it (a finished trial takes no attributes) and mark
    the retry in system attributes only.
    """
    why = f"its worker stopped beating for over {grace_s:g} s (killed, or its machine lost)"
    ended = 0
    # Optuna's own reading of its heartbeats, against the database's clock.
    for trial_id in storage._get_stale_trial_ids(study._study_id):
        ended += settle(storage, study, trial_id, why=why, died=True, max_retries=max_retries)
    return ended


def recover(
    engine: sa.Engine,
    storage: optuna.storages.RDBStorage,
    study: optuna.Study,
    *,
    grace_s: float,
    max_retries: int | None,
) -> None:
    """End ``study``'s trials whose workers died (:func:`fail_stale`) or lost them before
    their first heartbeat, and queue their retries: what a worker does before claiming."""
    fail_stale(storage, study, grace_s=grace_s, max_retries=max_retries)
    for lost in orphaned_trials(engine, study.study_name, older_than_s=grace_s):
        settle(storage, study, lost, why="its worker lost it before it began")


def finished_elsewhere(storage: optuna.storages.RDBStorage, trial_id: int) -> bool:
    """Whether the trial was ended by someone else (failed as stale by another worker)."""
    return storage.get_trial(trial_id).state.is_finished()
