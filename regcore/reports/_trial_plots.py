"""Figures built from what the trial runner records on each trial (``method_class``,
``method``, ``sparsity``, ``l1``, ``l2``): the regularizers (method classes) compared, and
sparsity against the objective. Drawn with plotly's graph objects, one colour per class
across the report. The search's trials only: a confirmation's are shown in its own section.
"""

from __future__ import annotations

import statistics
import zlib
from collections import defaultdict
from typing import Any

import optuna
import plotly.graph_objects as go
from optuna.trial import FrozenTrial
from plotly.colors import qualitative

from regcore.regularizers import CLASSES, METHODS
from regcore.reports._facts import SweepFacts, class_of, complete_trials, is_baseline
from regcore.reports._html import Note, num

#: Colours and order: the classes, then (for studies from before classes) the methods.
_KNOWN = (*CLASSES, *METHODS)
BASELINE_COLOUR = "#7f7f7f"
BASELINE = "baseline (λ=0)"


def method_of(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("method", trial.params.get("method", "?")))


def by_class(trials: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    """Trials per method class, in :data:`CLASSES` order (unknown names after, sorted)."""
    groups: dict[str, list[FrozenTrial]] = defaultdict(list)
    for t in trials:
        groups[class_of(t)].append(t)
    rank = {m: i for i, m in enumerate(_KNOWN)}
    return {m: groups[m] for m in sorted(groups, key=lambda m: (rank.get(m, len(rank)), m))}


def colour(name: str) -> str:
    """The colour of a class (or, in an old study, a method) everywhere in a report."""
    if name == BASELINE:
        return BASELINE_COLOUR
    palette: list[str] = qualitative.Plotly
    index = _KNOWN.index(name) if name in _KNOWN else len(_KNOWN) + zlib.crc32(name.encode())
    return palette[index % len(palette)]


def hover(t: FrozenTrial) -> str:
    l1, l2 = (num(t.user_attrs.get(k, t.params.get(k)), "g") for k in ("l1", "l2"))
    baseline = " (baseline)" if is_baseline(t) else ""
    return f"trial {t.number}{baseline}<br>{class_of(t)}: {method_of(t)}<br>λ₁={l1}, λ₂={l2}"


def class_comparison(study: optuna.Study, facts: SweepFacts) -> list[Any | Note]:
    """The objective by method class (every search trial a point), the baseline apart as a
    dashed line: classes are the regularizers; methods of a class differ in cost only."""
    complete = complete_trials(study)
    baselines = [t for t in complete if is_baseline(t)]
    groups = by_class([t for t in complete if not is_baseline(t)])
    metric = facts.metrics[0]
    base = statistics.median(t.values[0] for t in baselines) if baselines else None
    at_base = f"; the baseline (λ = 0) reached {metric} = {num(base)}" if base is not None else ""
    if not groups:
        return [Note(f"No regularized trial has completed yet, so no classes to compare{at_base}.")]
    if len(groups) == 1:
        (name, trials), *_ = groups.items()
        methods = ", ".join(sorted({method_of(t) for t in trials}))
        return [
            Note(
                f"Only one regularizer ({name}, run as {methods}) was searched, so there is "
                f"nothing to compare{at_base}."
            )
        ]
    fig = go.Figure()
    for name, trials in groups.items():
        fig.add_trace(
            go.Box(
                name=name,
                y=[t.values[0] for t in trials],
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker_color=colour(name),
                hovertext=[hover(t) for t in trials],
                hoverinfo="y+text",
            )
        )
    if base is not None:
        fig.add_hline(
            y=base,
            line={"dash": "dash", "color": BASELINE_COLOUR},
            annotation_text=f"{BASELINE}: {num(base, '.4g')}",
            annotation_position="top left",
        )
    fig.update_layout(
        title=f"{metric} by method class (the baseline dashed)",
        yaxis_title=metric,
        xaxis_title="method class",
        showlegend=False,
    )
    return [fig]


def sparsity_scatter(study: optuna.Study, facts: SweepFacts) -> Any | Note:
    """Sparsity (fraction of regularized weights exactly 0) against the objective."""
    complete = complete_trials(study)
    if not complete:
        return Note("No trial has completed yet, so there is no sparsity to plot.")
    measured = [t for t in complete if isinstance(t.user_attrs.get("sparsity"), int | float)]
    if not measured:
        return Note("No complete trial recorded its sparsity, so there is nothing to plot.")
    metric = facts.metrics[0]
    groups = by_class([t for t in measured if not is_baseline(t)])
    baselines = [t for t in measured if is_baseline(t)]
    if baselines:
        groups[BASELINE] = baselines
    fig = go.Figure()
    for name, trials in groups.items():
        fig.add_trace(
            go.Scatter(
                name=name,
                mode="markers",
                x=[float(t.user_attrs["sparsity"]) for t in trials],
                y=[t.values[0] for t in trials],
                marker={"color": colour(name), "size": 9, "opacity": 0.85},
                hovertext=[hover(t) for t in trials],
                hoverinfo="x+y+text",
            )
        )
    fig.update_layout(
        title=f"Sparsity vs {metric}",
        xaxis_title="sparsity (fraction of regularized weights = 0)",
        yaxis_title=metric,
        legend_title="method class",
    )
    return fig
