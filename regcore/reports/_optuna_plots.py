"""The figures Optuna's visualization module draws: history, λ₁ × λ₂ contour, Pareto front and
parameter importances. Each builder returns a figure or the :class:`Note` that says why
there is none; an error inside Optuna becomes a note too, never a failed report.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import optuna.visualization as vis
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import FrozenTrial

from regcore.reports._facts import SweepFacts, complete_trials
from regcore.reports._html import Note

_SYMBOLS = {"l1": "λ₁", "l2": "λ₂"}


def _guarded(what: str, draw: Callable[[], Any]) -> Any | Note:
    try:
        return draw()
    except Exception as exc:  # a report shows what it can; Optuna's refusals become notes
        return Note(f"{what} could not be drawn: {type(exc).__name__}: {exc}")


def _distinct(trials: list[FrozenTrial], name: str) -> list[Any]:
    seen: dict[str, Any] = {}
    for t in trials:
        if name in t.params:
            seen.setdefault(repr(t.params[name]), t.params[name])
    return list(seen.values())


def _listed(values: list[Any]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:5]) + (
        ", …" if len(values) > 5 else ""
    )


def history(study: optuna.Study, facts: SweepFacts, *, index: int = 0) -> Any | Note:
    """Objective ``index`` of every complete trial, with the best so far."""
    if not complete_trials(study):
        return Note("No trial has completed yet, so there is no optimization history.")
    target, name = facts.target(index)
    fig = _guarded(
        "The optimization history",
        lambda: vis.plot_optimization_history(study, target=target, target_name=name),
    )
    if not isinstance(fig, Note):
        fig.update_layout(title_text=f"Optimization history of {facts.objective(index)}")
    return fig


def contour(study: optuna.Study, facts: SweepFacts) -> Any | Note:
    """The objective over λ₁ × λ₂, when both were sampled and varied."""
    complete = complete_trials(study)
    if not complete:
        return Note("No trial has completed yet, so there is no λ₁ × λ₂ surface to draw.")
    for name, symbol in _SYMBOLS.items():
        if not any(name in t.params for t in complete):
            used = sorted({float(t.user_attrs.get(name, 0.0)) for t in complete})
            return Note(
                f"{symbol} was not sampled (the trials trained with {symbol} = {_listed(used)}), "
                "so there is no λ₁ × λ₂ surface; the sections below compare what did vary."
            )
    both = [t for t in complete if "l1" in t.params and "l2" in t.params]
    if len(both) < 2:
        return Note(
            f"The λ₁ × λ₂ contour needs at least 2 complete trials that sampled both λ₁ and λ₂, "
            f"but got {len(both)} (methods that cannot apply λ₁ do not sample it)."
        )
    for name, symbol in _SYMBOLS.items():
        values = _distinct(both, name)
        if len(values) < 2:
            return Note(
                f"Every complete trial that sampled both used {symbol} = {_listed(values)}, "
                "so there is no λ₁ × λ₂ surface yet."
            )
    target, target_name = facts.target(0)
    return _guarded(
        "The λ₁ × λ₂ contour",
        lambda: vis.plot_contour(
            study, params=["l1", "l2"], target=target, target_name=target_name
        ),
    )


def pareto_front(study: optuna.Study, facts: SweepFacts) -> Any | Note:
    """Both objectives of every complete trial, the Pareto-optimal ones marked."""
    if not complete_trials(study):
        return Note("No trial has completed yet, so there is no Pareto front.")
    return _guarded(
        "The Pareto front",
        lambda: vis.plot_pareto_front(study, target_names=list(facts.metrics)),
    )


def importances(study: optuna.Study, facts: SweepFacts) -> list[Any | Note]:
    """fANOVA importances of the sampled parameters (seeded, so a report is reproducible)."""
    complete = complete_trials(study)
    if len(complete) < 2:
        return [
            Note(f"Parameter importances need at least 2 complete trials, but got {len(complete)}.")
        ]
    names = sorted({name for t in complete for name in t.params})
    varying = [name for name in names if len(_distinct(complete, name)) >= 2]
    if len(varying) < 2:
        return [
            Note(
                "Parameter importances need at least 2 sampled parameters that vary, but got "
                f"{len(varying)} ({', '.join(varying) or 'none'})."
            )
        ]
    evaluator = FanovaImportanceEvaluator(seed=0)
    name = facts.metrics[0]
    fig = _guarded(
        "The parameter importances",
        # With two objectives, no target: Optuna ranks the parameters for each objective.
        lambda: (
            vis.plot_param_importances(study, evaluator=evaluator)
            if facts.multi
            else vis.plot_param_importances(study, evaluator=evaluator, target_name=name)
        ),
    )
    # Optuna ranks only what every complete trial sampled (λ₁ is conditional on the method).
    left_out = [n for n in varying if not all(n in t.params for t in complete)]
    if left_out and not isinstance(fig, Note):
        shown = ", ".join(_SYMBOLS.get(n, n) for n in left_out)
        why = " (weight_decay never samples λ₁)" if "l1" in left_out else ""
        return [fig, Note(f"Not ranked: {shown}, which some complete trials did not sample{why}.")]
    return [fig]
