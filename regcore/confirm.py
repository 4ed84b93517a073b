"""Confirmation: the best settings and the λ = 0 baseline, trained again with new seeds.

One seed per setting cannot tell a gain from noise (tried as a new user would: the best
val_loss 1.333 against a baseline of 1.343, and nothing said whether that is real). With
``confirm: {seeds: S, top: K}`` a sweep, once its search is over (budget used, none of its
trials running), queues the ``K`` best distinct settings and the baseline ``S`` times each
with seeds it never searched with (:func:`queue_confirmation`). The search's own trial of a
setting is not reused: it was picked for being lucky (the winner's curse).

:func:`confirmation` reads them back: each setting's mean ± sd, and a one-sided Welch t-test
at :data:`ALPHA` (does the setting beat the baseline?). The recommendation breaks ties
toward the simpler and cheaper setting: settings the best cannot be told from (Welch at
5 %) are tied, and among them the baseline wins first (then fewer non-zero λ, then the
class order penalty < decoupled < proximal, then the cheaper method); when the baseline is
tied with the best, regularization made no measurable difference, and the result says so.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from regcore.regularizers import CLASSES
from regcore.results import regularizer_line
from regcore.spec import SweepSpec
from regcore.spec._suggest import baseline_params, is_baseline

#: The significance level of every test here (one-sided Welch t-test).
ALPHA = 0.05
#: Study user attribute: how many confirmation trials were queued (its presence: they were).
QUEUED = "confirm_queued"
BASELINE = "baseline"  # the ``confirm`` user attribute of the baseline's confirmation trials
_SEARCHED = ("method_class", "l1", "l2")  # what the baseline's confirmation leaves out


def is_confirmation(trial: optuna.Trial | FrozenTrial) -> bool:
    return "confirm" in trial.user_attrs


def search_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The search's COMPLETE trials, best first (confirmations and the baseline left out)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    found = [t for t in complete if not is_confirmation(t) and not is_baseline(t)]
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(found, key=lambda t: (sign * float(t.value or 0.0), t.number))


def queue_confirmation(study: optuna.Study, spec: SweepSpec) -> int:
    """Queue the confirmation trials of a finished search, once; how many were queued."""
    if not spec.confirm.enabled or QUEUED in study.user_attrs:
        return 0
    top: list[FrozenTrial] = []
    for trial in search_trials(study):
        if all(trial.params != t.params for t in top):
            top.append(trial)
        if len(top) == spec.confirm.top:
            break
    if not top:
        return 0  # nothing completed: nothing to confirm
    seeds = [spec.training.seed + 1 + i for i in range(spec.confirm.seeds)]
    baseline = {k: v for k, v in top[0].params.items() if k not in _SEARCHED}
    baseline |= {k: v for k, v in baseline_params(spec).items() if k in _SEARCHED}
    queued = 0
    for seed in seeds:  # seed by seed, so a sweep cut short has every setting at some seeds
        for trial in top:
            attrs = {"confirm": trial.number, "confirm_seed": seed}
            study.enqueue_trial(trial.params, user_attrs=attrs, skip_if_exists=False)
            queued += 1
        marks: dict[str, Any] = {"confirm": BASELINE, "confirm_seed": seed, "baseline": True}
        study.enqueue_trial(baseline, user_attrs=marks, skip_if_exists=False)
        queued += 1
    study.set_user_attr(QUEUED, queued)
    return queued


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One confirmed setting: what it trains with and the values its seeds reached."""

    label: str  # "best", "#2", ..., "baseline (λ=0)"
    source: int | None  # the search trial it repeats (None: the baseline)
    method: str
    method_class: str
    l1: float
    l2: float
    lr: float
    values: tuple[float, ...]
    p_vs_baseline: float | None  # one-sided Welch: this setting beats the baseline

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.values else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else math.nan

    @property
    def is_baseline(self) -> bool:
        return self.source is None

    def shown(self) -> str:
        return f"{self.mean:.4g} ± {self.sd:.2g} (n={self.n})"

    def regularizer_line(self) -> str:
        """What to paste into a training script to use this setting."""
        return regularizer_line(l1=self.l1, l2=self.l2, method=self.method)


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    """The confirmation's result: the settings (search order, baseline last), the one it
    recommends, whether that beats the baseline beyond noise, and the sentence that says it."""

    settings: list[Setting]
    recommended: Setting | None
    beats_baseline: bool
    verdict: str
    pending: int  # confirmation trials not finished yet


def welch_p(better: Sequence[float], than: Sequence[float], *, maximize: bool) -> float:
    """One-sided Welch t-test: the p-value of ``better`` beating ``than`` by chance."""
    from scipy import stats  # scikit-learn's dependency, loaded only when asked for

    if len(better) < 2 or len(than) < 2:
        return math.nan
    if statistics.pvariance(better) == 0 and statistics.pvariance(than) == 0:
        # No spread at all (a deterministic workload): a difference is certain, none is not.
        gain = statistics.fmean(better) - statistics.fmean(than)
        return 0.0 if (gain > 0 if maximize else gain < 0) else 1.0
    alternative = "greater" if maximize else "less"
    result = stats.ttest_ind(better, than, equal_var=False, alternative=alternative)
    return float(result.pvalue)


def confirmation(
    study: optuna.Study, *, costs: Mapping[str, float] | None = None
) -> Confirmation | None:
    """What the confirmation trials of ``study`` say (None: it has none)."""
    trials = [t for t in study.get_trials(deepcopy=False) if is_confirmation(t)]
    if not trials:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    groups: dict[Any, list[FrozenTrial]] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        groups.setdefault(trial.user_attrs["confirm"], []).append(trial)
    baseline_values = _values(groups.get(BASELINE, []))
    order = [k for k in groups if k != BASELINE] + ([BASELINE] if BASELINE in groups else [])
    settings = []
    for rank, key in enumerate(order):
        values = _values(groups[key])
        label = "baseline (λ=0)" if key == BASELINE else ("best" if rank == 0 else f"#{rank + 1}")
        p = None if key == BASELINE else welch_p(values, baseline_values, maximize=maximize)
        settings.append(_setting(groups[key][0], key, label, values, p))
    pending = sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
    recommended, beats = _recommend(settings, maximize=maximize, costs=costs or {})
    return Confirmation(
        settings=settings,
        recommended=recommended,
        beats_baseline=beats,
        verdict=_verdict(settings, recommended, beats, pending),
        pending=pending,
    )


def _values(trials: list[FrozenTrial]) -> tuple[float, ...]:
    return tuple(
        float(t.value) for t in trials if t.state == TrialState.COMPLETE and t.value is not None
    )


def _setting(
    trial: FrozenTrial, key: Any, label: str, values: tuple[float, ...], p: float | None
) -> Setting:
    attrs = trial.user_attrs
    return Setting(
        label=label,
        source=None if key == BASELINE else int(key),
        method=str(attrs.get("method", "?")),
        method_class=str(attrs.get("method_class", "?")),
        l1=float(attrs.get("l1", trial.params.get("l1", 0.0))),
        l2=float(attrs.get("l2", trial.params.get("l2", 0.0))),
        lr=float(attrs.get("lr", trial.params.get("lr", math.nan))),
        values=values,
        p_vs_baseline=p,
    )


def _recommend(
    settings: list[Setting], *, maximize: bool, costs: Mapping[str, float]
) -> tuple[Setting | None, bool]:
    """The simplest setting the best cannot be told from, and whether it beats the baseline."""
    measured = [s for s in settings if s.n >= 2]
    if not measured:
        return None, False
    sign = -1.0 if maximize else 1.0
    best = min(measured, key=lambda s: sign * s.mean)
    tied = [
        s
        for s in measured
        if s is best or not welch_p(best.values, s.values, maximize=maximize) < ALPHA
    ]

    def simplicity(s: Setting) -> tuple[float, ...]:
        cls = CLASSES.index(s.method_class) if s.method_class in CLASSES else len(CLASSES)
        nonzero = (s.l1 > 0) + (s.l2 > 0)
        return (
            0 if s.is_baseline else 1,
            nonzero,
            cls,
            costs.get(s.method, math.inf),
            sign * s.mean,
        )

    for s in sorted(tied, key=simplicity):
        if s.is_baseline or (s.p_vs_baseline is not None and s.p_vs_baseline < ALPHA):
            return s, not s.is_baseline
    return best, False  # none is measurably better than the baseline, nor is it measured


def _verdict(
    settings: list[Setting], recommended: Setting | None, beats: bool, pending: int
) -> str:
    waiting = f" ({pending} confirmation trials still to run)" if pending else ""
    baseline = next((s for s in settings if s.is_baseline), None)
    if recommended is None or baseline is None or baseline.n < 2:
        return f"not enough confirmation trials finished to compare{waiting}"
    best = next(s for s in settings if not s.is_baseline)
    test = f"one-sided Welch t-test at {ALPHA:.0%}"
    if not beats:
        return (
            f"regularization made no measurable difference: the best setting reached "
            f"{best.shown()}, the baseline {baseline.shown()} (p = {best.p_vs_baseline:.2g}, "
            f"{test}); train without it{waiting}"
        )
    return (
        f"{recommended.method_class} with λ₁ = {recommended.l1:.3g}, λ₂ = {recommended.l2:.3g} "
        f"beats the baseline: {recommended.shown()} against {baseline.shown()} "
        f"(p = {recommended.p_vs_baseline:.2g}, {test}){waiting}"
    )
