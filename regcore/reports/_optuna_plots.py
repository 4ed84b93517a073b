"""The figures Optuna's visualization module draws: history, Pareto front and parameter
importances (the λ₁ × λ₂ contours, one per method class, are :mod:`._contours`'). Each
builder returns a figure or the :class:`Note` that says why there is none; an error inside
Optuna becomes a note too, never a failed report. Each draws the search's trials only:
a confirmation repeats settings with new seeds, and is shown in its own section.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
import optuna.visualization as vis
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import FrozenTrial

from regcore.reports._facts import (
    SweepFacts,
    complete_trials,
    is_baseline,
    search_study,
    sub_study,
)
from regcore.reports._html import Note

SYMBOLS = {"l1": "λ₁", "l2": "λ₂"}
#: Complete regularized search trials below which importances are not ranked: fANOVA's
#: forest on fewer points ranks noise (a parameter's "importance" changes with the seed).
MIN_IMPORTANCE_TRIALS = 10


def guarded(what: str, draw: Callable[[], Any]) -> Any | Note:
    try:
        return draw()
    except Exception as exc:  # a report shows what it can; Optuna's refusals become notes
        return Note(f"{what} could not be drawn: {type(exc).__name__}: {exc}")


def distinct(trials: list[FrozenTrial], name: str) -> list[Any]:
    seen: dict[str, Any] = {}
    for t in trials:
        if name in t.params:
            seen.setdefault(repr(t.params[name]), t.params[name])
    return list(seen.values())


def listed(values: list[Any]) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values[:5]) + (
        ", …" if len(values) > 5 else ""
    )


def history(study: optuna.Study, facts: SweepFacts, *, index: int = 0) -> Any | Note:
    """Objective ``index`` of every complete trial, with the best so far."""
    if not complete_trials(study):
        return Note("No trial has completed yet, so there is no optimization history.")
    target, name = facts.target(index)
    search = search_study(study)
    fig = guarded(
        "The optimization history",
        lambda: vis.plot_optimization_history(search, target=target, target_name=name),
    )
    if not isinstance(fig, Note):
        fig.update_layout(title_text=f"Optimization history of {facts.objective(index)}")
    return fig


def pareto_front(study: optuna.Study, facts: SweepFacts) -> Any | Note:
    """Both objectives of every complete trial, the Pareto-optimal ones marked."""
    if not complete_trials(study):
        return Note("No trial has completed yet, so there is no Pareto front.")
    search = search_study(study)
    return guarded(
        "The Pareto front",
        lambda: vis.plot_pareto_front(search, target_names=list(facts.metrics)),
    )


def importances(study: optuna.Study, facts: SweepFacts) -> list[Any | Note]:
    """fANOVA importances of the sampled parameters (seeded, so a report is reproducible),
    from the regularized search trials: the baseline samples no λ (Optuna ranks only what
    every trial sampled), and a confirmation repeats what the search found."""
    complete = [t for t in complete_trials(study) if not is_baseline(t)]
    if len(complete) < MIN_IMPORTANCE_TRIALS:
        return [
            Note(
                f"Parameter importances need at least {MIN_IMPORTANCE_TRIALS} complete "
                f"regularized trials (fewer rank noise), but got {len(complete)}."
            )
        ]
    names = sorted({name for t in complete for name in t.params})
    varying = [name for name in names if len(distinct(complete, name)) >= 2]
    if len(varying) < 2:
        return [
            Note(
                "Parameter importances need at least 2 sampled parameters that vary, but got "
                f"{len(varying)} ({', '.join(varying) or 'none'})."
            )
        ]
    evaluator = FanovaImportanceEvaluator(seed=0)
    name = facts.metrics[0]
    ranked = sub_study(study, complete)
    fig = guarded(
        "The parameter importances",
        # With two objectives, no target: Optuna ranks the parameters for each objective.
        lambda: (
            vis.plot_param_importances(ranked, evaluator=evaluator)
            if facts.multi
            else vis.plot_param_importances(ranked, evaluator=evaluator, target_name=name)
        ),
    )
    # Optuna ranks only what every trial sampled (λ₁ is conditional on the method class).
    left_out = [n for n in varying if not all(n in t.params for t in complete)]
    if left_out and not isinstance(fig, Note):
        shown = ", ".join(SYMBOLS.get(n, n) for n in left_out)
        why = " (a class of weight_decay alone never samples λ₁)" if "l1" in left_out else ""
        return [fig, Note(f"Not ranked: {shown}, which some complete trials did not sample{why}.")]
    return [fig]
