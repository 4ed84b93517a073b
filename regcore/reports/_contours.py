"""The objective over λ₁ × λ₂, one contour per method class.

Classes are different regularizers: the same (λ₁, λ₂) means another model under
``proximal`` than under ``penalty``, so one surface over every class would interpolate
between points that are not comparable. Each class gets Optuna's ``plot_contour`` of an
in-memory study of its own search trials (the baseline and a confirmation's trials left
out), or a note that says why it has none.
"""

from __future__ import annotations

from typing import Any

import optuna
import optuna.visualization as vis
from optuna.trial import FrozenTrial

from regcore.reports._facts import SweepFacts, complete_trials, is_baseline, sub_study
from regcore.reports._html import Note
from regcore.reports._optuna_plots import SYMBOLS, distinct, guarded, listed
from regcore.reports._trial_plots import by_class, method_of

#: Complete trials of a class, each sampling both λ, below which it has no contour: fewer
#: points leave most of the surface to the interpolation, which then shows shapes it made up.
MIN_CONTOUR_TRIALS = 8


def _class_contour(
    study: optuna.Study, facts: SweepFacts, name: str, trials: list[FrozenTrial]
) -> Any | Note:
    if not any("l1" in t.params for t in trials):
        methods = ", ".join(sorted({method_of(t) for t in trials}))
        return Note(
            f"{name} did not sample λ₁ ({methods} cannot apply it), so it has no λ₁ × λ₂ "
            "surface; its λ₂ is compared with the other classes' below."
        )
    both = [t for t in trials if "l1" in t.params and "l2" in t.params]
    if len(both) < MIN_CONTOUR_TRIALS:
        return Note(
            f"{name} has {len(both)} complete trials that sampled both λ₁ and λ₂; a contour "
            f"needs at least {MIN_CONTOUR_TRIALS} (fewer leave the surface to interpolation)."
        )
    for param, symbol in SYMBOLS.items():
        values = distinct(both, param)
        if len(values) < 2:
            return Note(
                f"Every complete {name} trial used {symbol} = {listed(values)}, so there is "
                "no λ₁ × λ₂ surface for it."
            )
    target, target_name = facts.target(0)
    own = sub_study(study, both)
    fig = guarded(
        f"The λ₁ × λ₂ contour of {name}",
        lambda: vis.plot_contour(own, params=["l1", "l2"], target=target, target_name=target_name),
    )
    if not isinstance(fig, Note):
        fig.update_layout(title_text=f"{name}: {target_name} over λ₁ × λ₂ ({len(both)} trials)")
    return fig


def class_contours(study: optuna.Study, facts: SweepFacts) -> list[tuple[str, Any | Note]]:
    """(class, its contour or the note why it has none), classes in their order; one
    ``("", note)`` when no class can have one (no trial yet, λ₁ or λ₂ never sampled)."""
    complete = [t for t in complete_trials(study) if not is_baseline(t)]
    if not complete:
        return [("", Note("No regularized trial has completed yet, so no λ₁ × λ₂ surface."))]
    for param, symbol in SYMBOLS.items():
        if not any(param in t.params for t in complete):
            used = sorted({float(t.user_attrs.get(param, 0.0)) for t in complete})
            return [
                (
                    "",
                    Note(
                        f"{symbol} was not sampled (the trials trained with {symbol} = "
                        f"{listed(used)}), so there is no λ₁ × λ₂ surface; the sections below "
                        "compare what did vary."
                    ),
                )
            ]
    return [
        (name, _class_contour(study, facts, name, trials))
        for name, trials in by_class(complete).items()
    ]
