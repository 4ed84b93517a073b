"""Trials that did not end on their own: queued again with the same parameters.

Three ways a trial is cut off without a verdict on its point, none of which uses budget:

- the worker's own shutdown stopped it (``interrupted``): :func:`requeue` runs it again;
- the database went away while it ran, so its outcome may never have been written:
  :func:`settle` ends it once the database answers and runs it again, at once rather than
  after the grace period (it may never have had a heartbeat to go stale by);
- the worker died: Optuna's stale-trial callback fails it after the grace period and queues
  the retry itself (``RetryHeartbeatStaleTrialCallback``, see :func:`regcore.store.create_storage`).
"""

from __future__ import annotations

import logging

import optuna
from optuna.trial import FrozenTrial, TrialState

from regcore.trial_kinds import IDENTITY, rules_of

_log = logging.getLogger(__name__)


def requeue(study: optuna.Study, frozen: FrozenTrial) -> None:
    """Queue ``frozen``'s parameters again in its own study, marked as its retry and keeping
    what it is (a baseline still trains with λ = 0, a confirmation with its seed). A path's
    trials are not queued: the path resumes instead (:mod:`worker.path`)."""
    if not rules_of(frozen).requeued:
        return
    attrs: dict[str, object] = {"retry_of": frozen.number}
    attrs |= {k: frozen.user_attrs[k] for k in IDENTITY if k in frozen.user_attrs}
    # A trial cut off before its suggestions has only the parameters it was queued with.
    params = {**frozen.system_attrs.get("fixed_params", {}), **frozen.params}
    study.enqueue_trial(params, user_attrs=attrs)


def settle(
    storage: optuna.storages.RDBStorage,
    study: optuna.Study,
    trial_id: int,
    *,
    why: str = "the database was unreachable",
) -> None:
    """End the trial an outage cut off, now that the database answers, and queue it anew.

    Nothing is left to do when its ``tell`` reached the database before the connection
    dropped, or another worker already failed it as stale (and queued the retry). Otherwise
    it is failed as not final (it uses no budget) and its parameters run again.
    """
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", f"interrupted: {why}")
        storage.set_trial_user_attr(trial_id, "final_failure", False)
        failed = storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
    except optuna.exceptions.UpdateFinishedTrialError:
        failed = False
    if failed:
        frozen = storage.get_trial(trial_id)
        _log.warning(
            "trial %d of %s was cut off (%s); running it again",
            frozen.number,
            study.study_name,
            why,
        )
        requeue(study, frozen)


def finished_elsewhere(storage: optuna.storages.RDBStorage, trial_id: int) -> bool:
    """Whether the trial was ended by someone else (failed as stale by another worker)."""
    return storage.get_trial(trial_id).state.is_finished()
