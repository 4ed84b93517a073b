"""Path mode (:mod:`regcore.sweeps.path`): the objective along each walk of the regularization path.

A path starts at the dense λ = 0 model (``path_step`` 0, the baseline), walks λ up one
warm-started point after another (``path_step`` 1, 2, …, on walk ``path_walk``;
``warm_start``: the trial it started from), re-trains points from scratch for every epoch
(``path_retrain``: the point it repeats) and refines the best of those from scratch
(``path_refine``). Warm starts can generalize worse than training from scratch — a λ a
trained network survives can kill one at initialization — so the report gives both, and the
values from scratch are what to expect.
"""

from __future__ import annotations

from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial, TrialState

from regcore.reports._facts import SweepFacts, class_of, search_trials
from regcore.reports._html import Note, num
from regcore.reports._trial_plots import BASELINE_COLOUR, colour, hover
from regcore.trial_kinds import PATH_REFINE, PATH_RETRAIN, PATH_STEP, PATH_WALK


def _lambda(trial: FrozenTrial, name: str) -> float:
    value = trial.user_attrs.get(name, trial.params.get(name, 0.0))
    return float(value) if isinstance(value, int | float) else 0.0


def has_path(study: optuna.Study) -> bool:
    return any(
        PATH_STEP in t.user_attrs or PATH_RETRAIN in t.user_attrs for t in search_trials(study)
    )


def _parts(
    study: optuna.Study,
) -> tuple[list[FrozenTrial], list[FrozenTrial], list[FrozenTrial]]:
    """Complete dense starts and points (by step), and every trial from scratch (re-trains
    and refinements) however it ended."""
    trials = search_trials(study)
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.values]
    dense = [t for t in done if t.user_attrs.get(PATH_STEP) == 0]
    points = [t for t in done if int(t.user_attrs.get(PATH_STEP, 0) or 0) >= 1]
    points.sort(key=lambda t: (int(t.user_attrs[PATH_STEP]), t.number))
    scratch = [t for t in trials if {PATH_RETRAIN, PATH_REFINE} & t.user_attrs.keys()]
    return dense, points, scratch


def _walks(points: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    """The points by walk (a path from before walks had names: by class)."""
    walks: dict[str, list[FrozenTrial]] = {}
    for t in points:
        walks.setdefault(str(t.user_attrs.get(PATH_WALK, class_of(t))), []).append(t)
    return walks


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
    for name, trials in _walks(points).items():
        on_axis = [t for t in trials if _lambda(t, axis) > 0]
        fig.add_trace(
            go.Scatter(
                name=name,
                x=[_lambda(t, axis) for t in on_axis],
                y=[t.values[0] for t in on_axis],
                mode="lines+markers",
                marker={"color": colour(class_of(trials[0])), "size": 8},
                hovertext=[f"{hover(t)}<br>step {t.user_attrs['path_step']}" for t in on_axis],
                hoverinfo="x+y+text",
            )
        )
    for t in retrains:
        if t.state != TrialState.COMPLETE or not t.values or _lambda(t, axis) <= 0:
            continue
        refined = PATH_REFINE in t.user_attrs
        what = "refined from scratch" if refined else "re-trained from scratch"
        fig.add_trace(
            go.Scatter(
                name=f"{what} (trial {t.number})",
                x=[_lambda(t, axis)],
                y=[t.values[0]],
                mode="markers",
                marker={
                    "symbol": "diamond" if refined else "star",
                    "size": 12 if refined else 16,
                    "color": colour(class_of(t)),
                },
                hovertext=[f"trial {t.number}: {hover(t)}, from scratch"],
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


def _setting(trial: FrozenTrial) -> str:
    return (
        f"{class_of(trial)}, λ₁ = {num(_lambda(trial, 'l1'), 'g')}, "
        f"λ₂ = {num(_lambda(trial, 'l2'), 'g')}"
    )


def path_summary(study: optuna.Study, facts: SweepFacts) -> str | None:
    """One line for the best section: the best point's warm-started value, that point from
    scratch, and the best from scratch (None without a path)."""
    _, points, scratch = _parts(study)
    if not points:
        return None
    metric = facts.metrics[0]
    sign = -1.0 if facts.directions[0] == "maximize" else 1.0
    source = min(points, key=lambda t: (sign * t.values[0], t.number))
    head = (
        f"Path: the best point (trial {source.number}: {_setting(source)}) reached {metric} = "
        f"{num(source.values[0])} warm-started"
    )
    again = next((t for t in scratch if t.user_attrs.get(PATH_RETRAIN) == source.number), None)
    if again is None:
        head += "; it has not been re-trained from scratch yet"
    elif again.state != TrialState.COMPLETE or not again.values:
        head += f"; its re-train from scratch (trial {again.number}) is {again.state.name.lower()}"
    else:
        head += f", {num(again.values[0])} trained from scratch (trial {again.number})"
    done = [t for t in scratch if t.state == TrialState.COMPLETE and t.values]
    if not done:
        return f"{head}."
    best = min(done, key=lambda t: (sign * t.values[0], t.number))
    return (
        f"{head}. The best trained from scratch is trial {best.number} ({_setting(best)}): "
        f"{num(best.values[0])}, what to expect."
    )
