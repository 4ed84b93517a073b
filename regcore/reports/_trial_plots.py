"""Figures built from what the trial runner records on each trial (``method``,
``median_step_ms``, ``sparsity``, ``l1``, ``l2``): methods compared, and sparsity against the
objective. Drawn with plotly's graph objects, one colour per method across the report.
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

from regcore.regularizers import METHODS
from regcore.reports._facts import SweepFacts, complete_trials
from regcore.reports._html import Note, num


def _method(trial: FrozenTrial) -> str:
    return str(trial.user_attrs.get("method", trial.params.get("method", "?")))


def _by_method(trials: list[FrozenTrial]) -> dict[str, list[FrozenTrial]]:
    """Trials per method, in :data:`METHODS` order (unknown names after, sorted)."""
    groups: dict[str, list[FrozenTrial]] = defaultdict(list)
    for t in trials:
        groups[_method(t)].append(t)
    rank = {m: i for i, m in enumerate(METHODS)}
    return {m: groups[m] for m in sorted(groups, key=lambda m: (rank.get(m, len(rank)), m))}


def _colour(method: str) -> str:
    palette: list[str] = qualitative.Plotly
    index = (
        METHODS.index(method) if method in METHODS else len(METHODS) + zlib.crc32(method.encode())
    )
    return palette[index % len(palette)]


def _hover(t: FrozenTrial) -> str:
    l1, l2 = (num(t.user_attrs.get(k, t.params.get(k)), "g") for k in ("l1", "l2"))
    baseline = " (baseline)" if t.user_attrs.get("baseline") else ""
    return f"trial {t.number}{baseline}<br>{_method(t)}<br>λ₁={l1}, λ₂={l2}"


def _step_ms(trial: FrozenTrial) -> float | None:
    value = trial.user_attrs.get("median_step_ms")
    return float(value) if isinstance(value, int | float) else None


def method_comparison(study: optuna.Study, facts: SweepFacts) -> list[Any | Note]:
    """The objective by method (every trial a point), and median step time by method."""
    groups = _by_method(complete_trials(study))
    if not groups:
        return [Note("No trial has completed yet, so there are no methods to compare.")]
    if len(groups) == 1:
        (method, trials), *_ = groups.items()
        only = [s for t in trials if (s := _step_ms(t)) is not None]
        step = f"; its median step time was {statistics.median(only):.3g} ms" if only else ""
        return [Note(f"Only one method ({method}) was run, so there is nothing to compare{step}.")]
    metric = facts.metrics[0]
    values = go.Figure()
    for method, trials in groups.items():
        values.add_trace(
            go.Box(
                name=method,
                y=[t.values[0] for t in trials],
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker_color=_colour(method),
                hovertext=[_hover(t) for t in trials],
                hoverinfo="y+text",
            )
        )
    values.update_layout(
        title=f"{metric} by method", yaxis_title=metric, xaxis_title="method", showlegend=False
    )
    timed = {m: [s for t in ts if (s := _step_ms(t)) is not None] for m, ts in groups.items()}
    steps = {m: s for m, s in timed.items() if s}
    if not steps:
        return [values, Note("No complete trial recorded median_step_ms, so no step times.")]
    timing = go.Figure(
        go.Bar(
            x=list(steps),
            y=[statistics.median(s) for s in steps.values()],
            marker_color=[_colour(m) for m in steps],
            text=[f"{statistics.median(s):.3g} ms" for s in steps.values()],
            textposition="outside",
            hovertext=[f"median of {len(s)} trials" for s in steps.values()],
        )
    )
    timing.update_layout(
        title="Median step time by method (median over its trials)",
        yaxis_title="median step time (ms)",
        xaxis_title="method",
    )
    return [values, timing]


def sparsity_scatter(study: optuna.Study, facts: SweepFacts) -> Any | Note:
    """Sparsity (fraction of regularized weights exactly 0) against the objective."""
    complete = complete_trials(study)
    if not complete:
        return Note("No trial has completed yet, so there is no sparsity to plot.")
    measured = [t for t in complete if isinstance(t.user_attrs.get("sparsity"), int | float)]
    if not measured:
        return Note("No complete trial recorded its sparsity, so there is nothing to plot.")
    metric = facts.metrics[0]
    fig = go.Figure()
    for method, trials in _by_method(measured).items():
        fig.add_trace(
            go.Scatter(
                name=method,
                mode="markers",
                x=[float(t.user_attrs["sparsity"]) for t in trials],
                y=[t.values[0] for t in trials],
                marker={"color": _colour(method), "size": 9, "opacity": 0.85},
                hovertext=[_hover(t) for t in trials],
                hoverinfo="x+y+text",
            )
        )
    fig.update_layout(
        title=f"Sparsity vs {metric}",
        xaxis_title="sparsity (fraction of regularized weights = 0)",
        yaxis_title=metric,
        legend_title="method",
    )
    return fig
