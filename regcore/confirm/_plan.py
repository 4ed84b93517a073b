"""Queueing a confirmation: which settings, their λ = 0 twins, which seeds, and the study
they live in.

Once the search is over, the ``top`` best distinct settings it trained from scratch (the
"candidates") are trained again ``seeds`` times with seeds the search never used. Each
candidate is compared with its *twin*: the same setting with λ₁ = λ₂ = 0 and every other
searched value (lr, ``search_space.params``) its own, so a gain is the regularizer's, not a
wider layer's or another learning rate's. Candidates that share their other values share a
twin. Every setting trains on every seed, seed by seed (a confirmation cut short has every
setting at some seeds), and a seed fixes the initialization, the data order and, where the
workload names a split parameter (``split_param``) and ``confirm.vary_split`` allows, the
data split: more sources of variation estimate the real gain better (Bouthillier et al.,
MLSys 2021), and since all settings of one seed share them, the test stays paired.

The trials live in the sweep's confirmation study (:func:`confirmation_study_name`), so the
sweep's own study holds the search alone (Optuna's best trial of it is the search's).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from regcore.spec import SweepSpec
from regcore.spec.suggest import baseline_params
from regcore.store import confirmation_study_name
from regcore.sweeps.results import REGULARIZER_PARAMS, other_params, ranked, search_results
from regcore.trial_kinds import (
    BASELINE,
    CONFIRM,
    CONFIRM_SEED,
    CONFIRM_SPLIT,
    PINNED_METHOD,
    TWIN,
    rules_of,
)
from regcore.workloads import get_workload

#: Search study user attribute: how many confirmation trials were queued (set last).
QUEUED = "confirm_queued"
#: Confirmation study user attribute: the search study it confirms.
CONFIRMS = "confirmation_of"


def twin_key(index: int) -> str:
    """The ``confirm`` key of the ``index``-th distinct twin: baseline, baseline-2, ..."""
    return BASELINE if index == 0 else f"{BASELINE}-{index + 1}"


def candidates(study: optuna.Study, top: int) -> list[FrozenTrial]:
    """The ``top`` best distinct settings the search trained from scratch, best first."""
    found: list[FrozenTrial] = []
    for trial in ranked(study, search_results(study)):
        if rules_of(trial).baseline or any(trial.params == t.params for t in found):
            continue
        found.append(trial)
        if len(found) == top:
            break
    return found


@dataclass(frozen=True, kw_only=True)
class Planned:
    """One setting of the confirmation: its key, its parameters, the marks it carries."""

    key: int | str  # the candidate's search trial number, or a twin's key
    params: dict[str, Any]
    attrs: dict[str, Any]


def plan(study: optuna.Study, spec: SweepSpec) -> list[Planned]:
    """The settings to confirm: the candidates, then their distinct twins."""
    zero = {k: v for k, v in baseline_params(spec).items() if k in REGULARIZER_PARAMS}
    twins: dict[frozenset[tuple[str, Any]], Planned] = {}
    settings = []
    for trial in candidates(study, spec.confirm.top):
        others = other_params(trial)
        identity = frozenset(others.items())
        if identity not in twins:
            key = twin_key(len(twins))
            twins[identity] = Planned(key=key, params={**others, **zero}, attrs={BASELINE: True})
        marks = {TWIN: twins[identity].key, PINNED_METHOD: trial.user_attrs.get("method")}
        settings.append(Planned(key=trial.number, params=dict(trial.params), attrs=marks))
    return [*settings, *twins.values()]


def seeds(spec: SweepSpec) -> list[tuple[int, int | None]]:
    """Each confirmation seed and the data split it uses (None: the workload's own)."""
    split_param = getattr(get_workload(spec.workload.name), "split_param", None)
    vary = spec.confirm.vary_split and split_param is not None
    base = int(spec.workload.params.get(split_param, 0)) if vary and split_param else 0
    return [
        (spec.training.seed + 1 + i, base + 1 + i if vary else None)
        for i in range(spec.confirm.seeds)
    ]


def confirmation_study(study: optuna.Study) -> optuna.Study | None:
    """The confirmation study of the search ``study``, if it has one."""
    try:
        return _load(study._storage, confirmation_study_name(study.study_name))
    except KeyError:
        return None


def _load(storage: optuna.storages.BaseStorage, name: str) -> optuna.Study:
    # Its trials come with their parameters; nothing is sampled, nothing pruned.
    return optuna.load_study(
        study_name=name,
        storage=storage,
        sampler=optuna.samplers.RandomSampler(seed=0),
        pruner=optuna.pruners.NopPruner(),
    )


def queue_confirmation(study: optuna.Study, spec: SweepSpec) -> int:
    """Queue the confirmation of a finished search once (call it under the study's lock);
    how many trials were queued (0: none to queue, or queued before)."""
    if not spec.confirm.enabled or QUEUED in study.user_attrs:
        return 0
    settings = plan(study, spec)
    if not settings:
        study.set_user_attr(QUEUED, 0)  # nothing completed: nothing to confirm
        return 0
    storage, name = study._storage, confirmation_study_name(study.study_name)
    with contextlib.suppress(KeyError):  # a worker that died queueing left it half made
        optuna.delete_study(study_name=name, storage=storage)
    optuna.create_study(study_name=name, storage=storage, directions=study.directions)
    confirm = _load(storage, name)
    confirm.set_user_attr(CONFIRMS, study.study_name)
    if "sweep_id" in study.user_attrs:
        confirm.set_user_attr("sweep_id", study.user_attrs["sweep_id"])
    queued = 0
    for seed, split in seeds(spec):
        for setting in settings:
            attrs = {CONFIRM: setting.key, CONFIRM_SEED: seed, **setting.attrs}
            if split is not None:
                attrs[CONFIRM_SPLIT] = split
            confirm.enqueue_trial(setting.params, user_attrs=attrs, skip_if_exists=False)
            queued += 1
    study.set_user_attr(QUEUED, queued)
    return queued


def next_confirmation(
    study: optuna.Study,
    spec: SweepSpec,
    *,
    recover: Callable[[optuna.Study], None] | None = None,
) -> optuna.Trial | None:
    """Once the search is over: queue the confirmation if it is not, then claim its oldest
    waiting trial (call it under the study's lock); None when none waits. ``recover`` first
    ends the confirmation trials whose workers died (and queues their retries)."""
    queue_confirmation(study, spec)
    confirm = confirmation_study(study)
    if confirm is None:
        return None
    if recover is not None:
        recover(confirm)
    waiting = confirm.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
    return confirm.ask() if waiting else None
