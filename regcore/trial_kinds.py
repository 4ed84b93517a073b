"""What a trial is, and the rules that follow from it: one row per kind.

A sweep's trials are not all alike. The search samples points; the λ = 0 baseline is the
reference every point is judged against; a path (:mod:`regcore.sweeps.path`) trains its points
from warm starts and re-trains the best of them from scratch; the confirmation
(:mod:`regcore.confirm`) trains the best settings and their λ = 0 twins again with new seeds,
in a study of its own. Which kind a trial is follows from its user attributes
(:func:`kind_of`); everything regsweep does differently per kind is a column of
:data:`RULES`, read from here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol


class _HasAttrs(Protocol):
    @property
    def user_attrs(self) -> dict[str, Any]: ...


# The user attributes that say what a trial is.
BASELINE = "baseline"  # trains with λ₁ = λ₂ = 0 (True)
PATH_STEP = "path_step"  # a path's point: 0 is its dense start, 1… the walk
PATH_WALK = "path_walk"  # the walk a path point is on (regcore.sweeps.path.Walk.key)
PATH_DIRECTION = "path_direction"  # that walk's direction in the λ₁ × λ₂ plane: [e₁, e₂]
WARM_START = "warm_start"  # the trial number a path point started from
PATH_RETRAIN = "path_retrain"  # a path point trained again from scratch: that point's number
PATH_REFINE = "path_refine"  # a from-scratch step away from a path's best: the trial it left
CONFIRM = "confirm"  # a confirmation trial: the key of the setting it repeats
CONFIRM_SEED = "confirm_seed"  # the seed a confirmation trial trains with
CONFIRM_SPLIT = "confirm_split"  # the data split it uses, where the workload can vary it
PINNED_METHOD = "pinned_method"  # the method a trial must run (a confirmation repeats one)
TWIN = "twin"  # a confirmed setting's λ = 0 twin: its ``confirm`` key

# The user attributes that say how a trial ended, when it did not complete.
FAIL_REASON = "fail_reason"  # why it failed, in words
FINAL_FAILURE = "final_failure"  # the point itself failed (True: it uses budget)
INTERRUPTED = "interrupted"  # a stop, not the point, ended it (it runs again)
RETRY_OF = "retry_of"  # the trial a retry repeats

#: What a retry keeps of the trial it repeats, beside its parameters: what it is.
IDENTITY = (BASELINE, CONFIRM, CONFIRM_SEED, CONFIRM_SPLIT, PINNED_METHOD, TWIN)


class TrialKind(StrEnum):
    SEARCH = "search"
    BASELINE = "baseline"
    PATH_START = "path_start"
    PATH_POINT = "path_point"
    PATH_RETRAIN = "path_retrain"
    PATH_REFINE = "path_refine"
    CONFIRM = "confirm"
    CONFIRM_BASELINE = "confirm_baseline"


@dataclass(frozen=True, kw_only=True)
class KindRules:
    """What regsweep does with a trial of one kind."""

    uses_budget: bool  # counts towards ``budget.n_trials``
    prunable: bool  # reports to the pruner, which may stop it
    requeued: bool  # cut off without a verdict (a stop, a dead worker): its parameters run again
    from_scratch: bool  # trained from initialization with the search's seed: a search result
    baseline: bool  # trains with λ₁ = λ₂ = 0
    in_search_study: bool  # lives in the sweep's study (the confirmation has its own)


RULES: dict[TrialKind, KindRules] = {
    # kind: budget, prunable, requeued, from scratch, baseline, in the search's study
    TrialKind.SEARCH: KindRules(
        uses_budget=True,
        prunable=True,
        requeued=True,
        from_scratch=True,
        baseline=False,
        in_search_study=True,
    ),
    TrialKind.BASELINE: KindRules(
        uses_budget=True,
        prunable=False,  # the reference the others are judged against runs to its end
        requeued=True,
        from_scratch=True,
        baseline=True,
        in_search_study=True,
    ),
    TrialKind.PATH_START: KindRules(
        uses_budget=True,
        prunable=False,
        requeued=False,  # a path resumes instead (its warm starts were in a worker's memory)
        from_scratch=True,
        baseline=True,
        in_search_study=True,
    ),
    TrialKind.PATH_POINT: KindRules(
        uses_budget=True,
        prunable=False,
        requeued=False,
        from_scratch=False,  # its value is the warm start's, not what the setting gives
        baseline=False,
        in_search_study=True,
    ),
    TrialKind.PATH_RETRAIN: KindRules(
        uses_budget=True,
        prunable=False,
        requeued=False,
        from_scratch=True,
        baseline=False,
        in_search_study=True,
    ),
    TrialKind.PATH_REFINE: KindRules(
        uses_budget=True,
        prunable=False,
        requeued=False,
        from_scratch=True,
        baseline=False,
        in_search_study=True,
    ),
    TrialKind.CONFIRM: KindRules(
        uses_budget=False,
        prunable=False,
        requeued=True,
        from_scratch=False,  # another seed: compared within the confirmation only
        baseline=False,
        in_search_study=False,
    ),
    TrialKind.CONFIRM_BASELINE: KindRules(
        uses_budget=False,
        prunable=False,
        requeued=True,
        from_scratch=False,
        baseline=True,
        in_search_study=False,
    ),
}


def kind_of(trial: _HasAttrs) -> TrialKind:
    """The kind of ``trial`` (an Optuna trial, frozen or running), from its user attributes."""
    attrs = trial.user_attrs
    if CONFIRM in attrs:
        return TrialKind.CONFIRM_BASELINE if attrs.get(BASELINE) else TrialKind.CONFIRM
    if PATH_RETRAIN in attrs:
        return TrialKind.PATH_RETRAIN
    if PATH_REFINE in attrs:
        return TrialKind.PATH_REFINE
    if PATH_STEP in attrs:
        return TrialKind.PATH_START if attrs[PATH_STEP] == 0 else TrialKind.PATH_POINT
    if attrs.get(BASELINE):
        return TrialKind.BASELINE
    return TrialKind.SEARCH


def rules_of(trial: _HasAttrs) -> KindRules:
    return RULES[kind_of(trial)]
