"""Learning curves: training and validation loss per epoch of the best regularized search
trial beside the λ = 0 baseline, from what every trial records (user attribute ``curves``:
``train_loss``, ``val_loss`` and the first objective's metric, ``None`` where a value was
not finite). A gap that closes with λ is what regularization is for; curves that still fall
at the last epoch say the budget, not λ, decided.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.subplots import make_subplots

from regcore.reports._facts import SweepFacts, class_of, complete_trials, is_baseline
from regcore.reports._html import Note
from regcore.reports._trial_plots import BASELINE, BASELINE_COLOUR, colour, method_of

LOSSES = ("train_loss", "val_loss")


def _curves(trial: FrozenTrial, names: Sequence[str]) -> dict[str, list[float | None]]:
    """The trial's curves of ``names`` that hold at least one number."""
    raw = trial.user_attrs.get("curves")
    if not isinstance(raw, Mapping):
        return {}
    curves: dict[str, list[float | None]] = {}
    for name in names:
        values = raw.get(name)
        if isinstance(values, Sequence) and not isinstance(values, str):
            shown = [float(v) if isinstance(v, int | float) else None for v in values]
            if any(v is not None for v in shown):
                curves[name] = shown
    return curves


def shown_trials(study: optuna.Study, facts: SweepFacts) -> list[tuple[str, FrozenTrial]]:
    """(role, trial): the best regularized search trial and the baseline."""
    complete = complete_trials(study)
    sign = -1.0 if facts.directions[0] == "maximize" else 1.0
    regularized = [t for t in complete if not is_baseline(t)]
    shown = []
    if regularized:
        best = min(regularized, key=lambda t: (sign * t.values[0], t.number))
        shown.append(("best regularized trial", best))
    shown += [("baseline", t) for t in complete if is_baseline(t)][:1]
    return shown


def learning_curves(study: optuna.Study, facts: SweepFacts) -> list[Any | Note]:
    """One figure, a panel per curve (train loss, val loss, the objective when it is
    another metric), a line per trial; a note for a trial that recorded none."""
    shown = shown_trials(study, facts)
    if not shown:
        return [Note("No trial has completed yet, so there are no learning curves.")]
    names = [*LOSSES, *(m for m in facts.metrics[:1] if m not in LOSSES)]
    drawn = [(t, c) for _, t in shown if (c := _curves(t, names))]
    notes: list[Any | Note] = [
        Note(
            f"Trial {t.number} (the {role}) recorded no learning curves (trials run before "
            "regsweep kept them have none)."
        )
        for role, t in shown
        if not _curves(t, names)
    ]
    if not drawn:
        return notes
    panels = [p for p in names if any(p in c for _, c in drawn)]
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=panels)
    for trial, curves in drawn:
        baseline = is_baseline(trial)
        label = f"{BASELINE if baseline else 'best: ' + class_of(trial)} (trial {trial.number})"
        line = {
            "color": BASELINE_COLOUR if baseline else colour(class_of(trial)),
            "dash": "dash" if baseline else "solid",
        }
        first = next(p for p in panels if p in curves)
        for col, panel in enumerate(panels, start=1):
            values = curves.get(panel)
            if values is None:
                continue
            fig.add_trace(
                go.Scatter(
                    x=list(range(1, len(values) + 1)),
                    y=values,
                    mode="lines+markers",
                    name=label,
                    legendgroup=label,
                    showlegend=panel == first,
                    line=line,
                    hovertext=f"{label}<br>{method_of(trial)}",
                ),
                row=1,
                col=col,
            )
            fig.update_xaxes(title_text="epoch", row=1, col=col)
    fig.update_layout(title="Learning curves: the best trial and the baseline", legend_title="")
    return [fig, *notes]
