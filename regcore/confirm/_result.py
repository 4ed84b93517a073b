"""What a confirmation says: each setting over its seeds, each candidate against its λ = 0
twin, and the recommendation.

A candidate beats its twin when its per-seed gains (the same seeds: :mod:`._stats`) pass a
one-sided paired t-test at 5 % after Holm's correction over the candidates tested. The
recommendation breaks ties toward the simpler and cheaper setting: the settings the best
one cannot be told from (paired, at 5 %) are tied, and among them a λ = 0 twin comes
first, then fewer non-zero λ, then the class order penalty < decoupled < proximal, then the
cheaper method; a regularized setting is recommended only if it beats its own twin. When
none does, regularization made no measurable difference, and the result says so.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from regcore.confirm._plan import confirmation_study
from regcore.confirm._stats import ALPHA, holm, paired_differences, paired_p
from regcore.regularizers import CLASSES
from regcore.sweeps.results import (
    other_params,
    params_text,
    paste_lines,
    regularizer_line,
    setting_of,
)
from regcore.trial_kinds import BASELINE, CONFIRM, CONFIRM_SEED, TWIN


@dataclass(frozen=True, kw_only=True)
class Setting:
    """One confirmed setting: what it trains with and the values its seeds reached."""

    key: int | str  # the search trial it repeats, or a twin's key ("baseline", ...)
    label: str  # "best", "#2", ..., "baseline (λ=0)"
    source: int | None  # the search trial it repeats (None: a λ = 0 twin)
    method: str
    method_class: str
    l1: float
    l2: float
    lr: float
    params: dict[str, Any] = field(default_factory=dict)  # its other searched values
    by_seed: dict[int, float] = field(default_factory=dict)  # COMPLETE seeds' values
    twin: int | str | None = None  # its λ = 0 twin's key (a candidate's)
    gains: tuple[float, ...] = ()  # per shared seed, how much better than its twin
    p_raw: float | None = None  # one-sided paired t-test against its twin
    p_vs_baseline: float | None = None  # the same, Holm-adjusted over the candidates

    @property
    def values(self) -> tuple[float, ...]:
        return tuple(self.by_seed[s] for s in sorted(self.by_seed))

    @property
    def n(self) -> int:
        return len(self.by_seed)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values) if self.by_seed else math.nan

    @property
    def sd(self) -> float:
        return statistics.stdev(self.values) if self.n > 1 else math.nan

    @property
    def wins(self) -> int:
        """Seeds on which it did better than its twin."""
        return sum(g > 0 for g in self.gains)

    @property
    def is_baseline(self) -> bool:
        return self.source is None

    def shown(self) -> str:
        return f"{self.mean:.4g} ± {self.sd:.2g} (n={self.n})"

    def regularizer_line(self) -> str:
        """What to paste into a training script to use this setting."""
        return regularizer_line(l1=self.l1, l2=self.l2, method=self.method)

    def paste(self) -> list[str]:
        """The setting ready to paste: its Regularizer and its other searched values."""
        return paste_lines(l1=self.l1, l2=self.l2, method=self.method, params=self.params)

    def summary(self) -> dict[str, Any]:
        """Plain data (NaN where nothing is measured yet)."""
        return {
            "label": self.label,
            "source": self.source,
            "method": self.method,
            "method_class": self.method_class,
            "l1": self.l1,
            "l2": self.l2,
            "lr": self.lr,
            "params": self.params,
            "mean": self.mean,
            "sd": self.sd,
            "n": self.n,
            "wins": self.wins if self.gains else None,
            "pairs": len(self.gains) if self.gains else None,
            "p": self.p_vs_baseline,
            "paste": self.paste(),
        }


@dataclass(frozen=True, kw_only=True)
class Confirmation:
    """The confirmation's result: the settings (candidates best first, then the twins), the
    one it recommends, whether that beats its λ = 0 twin beyond noise, and the sentence."""

    settings: list[Setting]
    recommended: Setting | None
    beats_baseline: bool
    verdict: str
    pending: int  # confirmation trials not finished yet

    def twin_of(self, setting: Setting) -> Setting | None:
        return next((s for s in self.settings if s.key == setting.twin), None)

    def summary(self) -> dict[str, Any]:
        """Plain data: the verdict, the recommended setting and every confirmed one."""
        chosen = self.recommended
        return {
            "verdict": self.verdict,
            "beats_baseline": self.beats_baseline,
            "pending": self.pending,
            "recommended": None if chosen is None else chosen.summary(),
            "settings": [s.summary() for s in self.settings],
        }


def confirmation_trials(study: optuna.Study) -> list[FrozenTrial]:
    """The confirmation trials of the search ``study``: its confirmation study's, and any
    an earlier version kept in the study itself."""
    confirm = confirmation_study(study)
    own = [t for t in study.get_trials(deepcopy=False) if CONFIRM in t.user_attrs]
    return own + ([] if confirm is None else confirm.get_trials(deepcopy=False))


def confirmation(
    study: optuna.Study, *, costs: Mapping[str, float] | None = None
) -> Confirmation | None:
    """What the confirmation trials of ``study`` say (None: it has none)."""
    trials = confirmation_trials(study)
    if not trials:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    groups: dict[int | str, list[FrozenTrial]] = {}
    for trial in sorted(trials, key=lambda t: t.number):
        groups.setdefault(trial.user_attrs[CONFIRM], []).append(trial)
    settings = _settings(groups, maximize=maximize)
    pending = sum(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in trials)
    recommended, beats = _recommend(settings, maximize=maximize, costs=costs or {})
    return Confirmation(
        settings=settings,
        recommended=recommended,
        beats_baseline=beats,
        verdict=_verdict(settings, recommended, beats, pending),
        pending=pending,
    )


def _settings(groups: dict[int | str, list[FrozenTrial]], *, maximize: bool) -> list[Setting]:
    twins = {k: v for k, v in groups.items() if isinstance(k, str)}
    candidates = [k for k in groups if not isinstance(k, str)]
    labels: dict[int | str, str] = {
        k: "best" if i == 0 else f"#{i + 1}" for i, k in enumerate(candidates)
    }
    for key in reversed(candidates):  # a twin is named after the first candidate it serves
        labels[str(groups[key][0].user_attrs.get(TWIN, BASELINE))] = labels[key]
    twin_settings = {
        key: _setting(
            trials,
            key=key,
            label="baseline (λ=0)"
            if key == BASELINE
            else f"baseline (λ=0) of {labels.get(key, key)}",
        )
        for key, trials in twins.items()
    }
    found = []
    for key in candidates:
        trials = groups[key]
        twin = trials[0].user_attrs.get(TWIN, BASELINE)
        setting = _setting(trials, key=key, label=labels[key], twin=twin)
        reference = twin_settings.get(twin)
        if reference is not None:
            gains = paired_differences(setting.by_seed, reference.by_seed, maximize=maximize)
            setting = _replace(setting, gains=tuple(gains), p_raw=_nan_none(paired_p(gains)))
        found.append(setting)
    adjusted = holm([math.nan if s.p_raw is None else s.p_raw for s in found])
    found = [_replace(s, p_vs_baseline=_nan_none(p)) for s, p in zip(found, adjusted, strict=True)]
    return [*found, *twin_settings.values()]


def _replace(setting: Setting, **changes: Any) -> Setting:
    return dataclasses.replace(setting, **changes)


def _nan_none(p: float) -> float | None:
    return None if math.isnan(p) else p


def _setting(trials: list[FrozenTrial], *, key: int | str, label: str, twin: Any = None) -> Setting:
    first = trials[0]
    by_seed = {
        int(t.user_attrs[CONFIRM_SEED]): float(t.value)
        for t in trials
        if t.state == TrialState.COMPLETE and t.value is not None
    }
    return Setting(
        key=key,
        label=label,
        source=None if isinstance(key, str) else int(key),
        params=other_params(first),
        by_seed=by_seed,
        twin=twin,
        **setting_of(first),
    )


def _recommend(
    settings: list[Setting], *, maximize: bool, costs: Mapping[str, float]
) -> tuple[Setting | None, bool]:
    """The simplest setting the best cannot be told from that is a λ = 0 twin or beats its
    own twin; and whether it is a regularized one."""
    measured = [s for s in settings if s.n >= 2]
    if not measured:
        return None, False
    sign = -1.0 if maximize else 1.0
    best = min(measured, key=lambda s: sign * s.mean)

    def tied(s: Setting) -> bool:
        gains = paired_differences(best.by_seed, s.by_seed, maximize=maximize)
        return s is best or not paired_p(gains) < ALPHA

    def simplicity(s: Setting) -> tuple[float, ...]:
        cls = CLASSES.index(s.method_class) if s.method_class in CLASSES else len(CLASSES)
        nonzero = (s.l1 > 0) + (s.l2 > 0)
        cost = costs.get(s.method, math.inf)
        return (0 if s.is_baseline else 1, nonzero, cls, cost, sign * s.mean)

    for s in sorted((s for s in measured if tied(s)), key=simplicity):
        if s.is_baseline:
            return s, False
        if s.p_vs_baseline is not None and s.p_vs_baseline < ALPHA:
            return s, True
    # The best is regularized but does not beat its own twin: train as it, without λ.
    twin = next((s for s in settings if s.key == best.twin), None)
    return (twin if twin is not None and twin.n else best), False


def _test_text(setting: Setting, n_tested: int) -> str:
    holm_note = f", Holm-adjusted over {n_tested} settings" if n_tested > 1 else ""
    p = "–" if setting.p_vs_baseline is None else f"{setting.p_vs_baseline:.2g}"
    return f"p = {p}, one-sided paired t-test{holm_note}, at {ALPHA:.0%}"


def _with(setting: Setting) -> str:
    return f" with {params_text(setting.params)}" if setting.params else ""


def _verdict(
    settings: list[Setting], recommended: Setting | None, beats: bool, pending: int
) -> str:
    waiting = f" ({pending} confirmation trials still to run)" if pending else ""
    candidates = [s for s in settings if not s.is_baseline]
    tested = sum(s.p_raw is not None for s in candidates)
    if recommended is None or not any(s.gains and len(s.gains) >= 2 for s in candidates):
        return f"not enough confirmation trials finished to compare{waiting}"
    if beats:
        twin = next(s for s in settings if s.key == recommended.twin)
        return (
            f"{recommended.method_class} with λ₁ = {recommended.l1:.3g}, λ₂ = "
            f"{recommended.l2:.3g}{_with(recommended)} beats its λ = 0 twin on "
            f"{recommended.wins} of {len(recommended.gains)} seeds: {recommended.shown()} "
            f"against {twin.shown()} ({_test_text(recommended, tested)}){waiting}"
        )
    best = max((s for s in candidates if s.gains), key=lambda s: statistics.fmean(s.gains))
    twin = next(s for s in settings if s.key == best.twin)
    return (
        f"regularization made no measurable difference: the best setting ({best.method_class}, "
        f"λ₁ = {best.l1:.3g}, λ₂ = {best.l2:.3g}) reached {best.shown()} against its λ = 0 "
        f"twin's {twin.shown()}, better on {best.wins} of {len(best.gains)} seeds "
        f"({_test_text(best, tested)}); train without it{_with(recommended)}{waiting}"
    )
