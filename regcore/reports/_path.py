"""Path mode (:mod:`regcore.path`): the objective along each class's regularization path.

A path starts at the dense λ = 0 model (``path_step`` 0, the baseline), walks λ up one
warm-started point after another (``path_step`` 1, 2, …; ``warm_start``: the trial it
started from), and re-trains its best point from scratch for every epoch
(``path_retrain``: the point it repeats). Warm starts can generalize worse than training
from scratch, so the report gives both values, and the re-trained one is what to expect.
"""

from __future__ import annotations

from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from regcore.reports._facts import SweepFacts, class_of, search_trials
from regcore.reports._html import Note, num
from regcore.reports._trial_plots import BASELINE_COLOUR, by_class, colour, hover


def _lambda(trial: FrozenTrial, name: str) -> float:
    value = trial.user_attrs.get(name, trial.params.get(name, 0.0))
    return float(value) if isinstance(value, int | float) else 0.0


def has_path(study: optuna.Study) -> bool:
    return any(
        "path_step" in t.user_attrs or "path_retrain" in t.user_attrs for t in search_trials(study)
    )


def _parts(
    study: optuna.Study,
) -> tuple[list[FrozenTrial], list[FrozenTrial], list[FrozenTrial]]:
    """Complete dense starts and points (by step), and every re-train however it ended."""
    trials = search_trials(study)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    dense = [t for t in done if t.user_attrs.get("path_step") == 0]
    points = [t for t in done if int(t.user_attrs.get("path_step", 0) or 0) >= 1]
    points.sort(key=lambda t: (int(t.user_attrs["path_step"]), t.number))
    return dense, points, [t for t in trials if "path_retrain" in t.user_attrs]


def _axis(points: list[FrozenTrial]) -> str:
    """The λ the path walks: λ₂ when it moves (every class has one), else λ₁."""
    return "l2" if len({_lambda(t, "l2") for t in points}) > 1 else "l1"


def path_figure(study: optuna.Study, facts: SweepFacts) -> Any | Note:
    """Objective against λ (log axis), a line per class; the dense start dashed and the
    re-trained point a star."""
    dense, points, retrains = _parts(study)
    if not points:
        return Note("No point of the path has completed yet, so there is no path to draw.")
    axis = _axis(points)
    symbol = {"l1": "λ₁", "l2": "λ₂"}[axis]
    if axis == "l2" and len({_lambda(t, "l1") for t in points}) > 1:
        symbol += " (λ₁ walks with it)"
    metric = facts.metrics[0]
    fig = go.Figure()
    for name, trials in by_class(points).items():
        on_axis = [t for t in trials if _lambda(t, axis) > 0]
        fig.add_trace(
            go.Scatter(
                name=name,
                x=[_lambda(t, axis) for t in on_axis],
                y=[t.values[0] for t in on_axis],
                mode="lines+markers",
                marker={"color": colour(name), "size": 8},
                hovertext=[f"{hover(t)}<br>step {t.user_attrs['path_step']}" for t in on_axis],
                hoverinfo="x+y+text",
            )
        )
    by_number = {t.number: t for t in points}
    for t in retrains:
        source = by_number.get(int(t.user_attrs["path_retrain"]))
        if t.state != TrialState.COMPLETE or not t.values or source is None:
            continue
        fig.add_trace(
            go.Scatter(
                name=f"re-trained from scratch (trial {t.number})",
                x=[_lambda(source, axis)],
                y=[t.values[0]],
                mode="markers",
                marker={"symbol": "star", "size": 16, "color": colour(class_of(source))},
                hovertext=[f"trial {t.number}: trial {source.number}'s point, from scratch"],
                hoverinfo="x+y+text",
            )
        )
    for t in dense[:1]:
        fig.add_hline(
            y=t.values[0],
            line={"dash": "dash", "color": BASELINE_COLOUR},
            annotation_text=f"dense start, λ = 0 (trial {t.number}): {num(t.values[0], '.4g')}",
            annotation_position="top left",
        )
    fig.update_xaxes(type="log", title_text=symbol)
    fig.update_layout(
        title=f"{metric} along the regularization path", yaxis_title=metric, legend_title=""
    )
    return fig


def path_summary(study: optuna.Study, facts: SweepFacts) -> str | None:
    """One line for the best section: the best point's warm-started value and its value
    re-trained from scratch (None without a path)."""
    _, points, retrains = _parts(study)
    if not points:
        return None
    metric = facts.metrics[0]
    sign = -1.0 if facts.directions[0] == "maximize" else 1.0
    retrain = max(retrains, key=lambda t: t.number, default=None)
    by_number = {t.number: t for t in points}
    source = None if retrain is None else by_number.get(int(retrain.user_attrs["path_retrain"]))
    if source is None:
        source = min(points, key=lambda t: (sign * t.values[0], t.number))
    setting = (
        f"{class_of(source)}, λ₁ = {num(_lambda(source, 'l1'), 'g')}, "
        f"λ₂ = {num(_lambda(source, 'l2'), 'g')}"
    )
    head = (
        f"Path: the best point (trial {source.number}: {setting}) reached {metric} = "
        f"{num(source.values[0])} warm-started"
    )
    if retrain is None:
        return f"{head}; it has not been re-trained from scratch yet."
    if retrain.state != TrialState.COMPLETE or not retrain.values:
        state = retrain.state.name.lower()
        return f"{head}; its re-train from scratch (trial {retrain.number}) is {state}."
    return (
        f"{head}, and {num(retrain.values[0])} re-trained from scratch for every epoch "
        f"(trial {retrain.number}): expect the re-trained value."
    )
