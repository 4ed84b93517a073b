"""The decision: what the confirmation (:mod:`regcore.confirm`) says, first in the report.

One seed per setting cannot tell a gain from noise. With ``confirm: {seeds: S, top: K}``
(the default) the sweep re-trains its best settings and each one's λ = 0 twin with new
seeds; this section shows the verdict, each setting's mean ± sd, its wins over its twin
seed by seed and the paired test's p-value, and a figure of the seeds. Without a
confirmation it says, in one line, that the search's best is unconfirmed and how to confirm.
"""

from __future__ import annotations

import math
from typing import Any

import optuna
import plotly.graph_objects as go

from regcore.confirm import Confirmation, Setting, confirmation
from regcore.reports._facts import SweepFacts, search_trials
from regcore.reports._html import Markup, Note, code, figure, note, num, table, text
from regcore.reports._trial_plots import BASELINE_COLOUR, colour
from regcore.sweeps.results import method_costs

ASK = "confirm: {seeds: 5, top: 3}"


def _costs(study: optuna.Study) -> dict[str, float]:
    """The probe the recommendation breaks cost ties with: the device the trials ran on."""
    probes = method_costs(study)
    devices = {str(t.user_attrs.get("device", "")).split(":")[0] for t in search_trials(study)}
    for label, costs in sorted(probes.items()):
        if label.split(" ")[0] in devices:
            return costs
    return next(iter(probes.values()), {})


def confirm(study: optuna.Study) -> Confirmation | Note | None:
    """The study's confirmation, None when it has none, a note when it cannot be read."""
    try:
        return confirmation(study, costs=_costs(study))
    except Exception as exc:  # a report shows what it can; the rest of it still helps
        return Note(f"The confirmation could not be read: {type(exc).__name__}: {exc}")


def _mean_sd(s: Setting) -> str:
    if not s.n:
        return "—"
    return f"{s.mean:.5g} ± {s.sd:.2g}" if s.n > 1 else f"{s.mean:.5g}"


def confirmation_figure(result: Confirmation, facts: SweepFacts) -> Any | Note:
    """Each setting's mean with ±sd error bars, and beside it every seed's value."""
    measured = [s for s in result.settings if s.n]
    if not measured:
        return Note("No confirmation trial has finished yet, so there is nothing to draw.")
    metric = facts.metrics[0]
    colours = [BASELINE_COLOUR if s.is_baseline else colour(s.method_class) for s in measured]
    fig = go.Figure(
        go.Scatter(
            name="mean ± sd",
            x=list(range(len(measured))),
            y=[s.mean for s in measured],
            error_y={
                "type": "data",
                "array": [0.0 if math.isnan(s.sd) else s.sd for s in measured],
                "visible": True,
                "thickness": 2,
                "width": 8,
            },
            mode="markers",
            marker={"symbol": "diamond", "size": 13, "color": colours},
            hovertext=[f"{s.label}: {s.shown()}" for s in measured],
            hoverinfo="text",
        )
    )
    seeds = [(i, v) for i, s in enumerate(measured) for v in s.values]
    fig.add_trace(
        go.Scatter(
            name="each seed",
            x=[i + 0.18 for i, _ in seeds],
            y=[v for _, v in seeds],
            mode="markers",
            marker={"symbol": "circle-open", "size": 8, "color": "#1d2330"},
            hoverinfo="y",
        )
    )
    labels = [f"{s.label}<br>{s.method_class}" for s in measured]
    fig.update_xaxes(tickvals=list(range(len(measured))), ticktext=labels, range=[-0.6, None])
    fig.update_layout(
        title=f"{metric} of each confirmed setting over its seeds (mean ± sd)",
        yaxis_title=metric,
        legend_title="",
    )
    return fig


def _table(result: Confirmation) -> Markup:
    searched = list(dict.fromkeys(k for s in result.settings for k in s.params if k != "lr"))
    headers = ["setting", "trial", "class", "method", "λ₁", "λ₂", "lr", *searched]
    headers += ["mean ± sd", "n", "wins over its λ = 0 twin", "p (paired, Holm)", ""]
    rows = [
        [
            s.label,
            "—" if s.source is None else s.source,
            s.method_class,
            s.method,
            num(s.l1, "g"),
            num(s.l2, "g"),
            num(s.lr, "g"),
            *(s.params.get(k, "—") for k in searched),
            _mean_sd(s),
            s.n,
            f"{s.wins} of {len(s.gains)}" if s.gains else "—",
            num(s.p_vs_baseline, ".2g"),
            "recommended" if s is result.recommended else "",
        ]
        for s in result.settings
    ]
    return table(headers, rows, numeric=range(4, len(headers) - 1))


def decision_parts(result: Confirmation | Note | None, facts: SweepFacts) -> list[Markup]:
    """The decision section's content: the verdict, the table and the figure; or the line
    that says how to ask for a confirmation."""
    if isinstance(result, Note):
        return [note(result.text)]
    if result is None:
        asked = facts.section("confirm").get("seeds")
        if isinstance(asked, int) and asked > 0:
            return [
                note(
                    f"A confirmation with {asked} seeds is asked for: it is queued once the "
                    "search has used its budget, and its verdict shows here."
                )
            ]
        return [
            Markup(
                '<p class="note">Unconfirmed: one seed per setting cannot tell a gain from '
                "noise, so nothing here is a recommendation. Remove "
                f"{code('confirm: false', block=False)} (or add {code(ASK, block=False)}) to "
                "re-train the 3 best settings and their λ = 0 twins with 5 new seeds each, "
                "and test them.</p>"
            )
        ]
    verdict = result.verdict[:1].upper() + result.verdict[1:]
    parts = [Markup(f'<p class="verdict"><strong>Decision:</strong> {text(verdict)}.</p>')]
    chosen = result.recommended
    if chosen is not None and not result.pending:
        parts += [
            Markup("<p>Paste into your training script:</p>"),
            code("\n".join(chosen.paste())),
        ]
    parts.append(_table(result))
    parts.append(figure(confirmation_figure(result, facts), div_id="confirmation", height=440))
    return parts
