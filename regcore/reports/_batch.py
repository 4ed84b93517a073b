"""The report of a batch: every sweep's best side by side, and each one's history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeAlias

import optuna

from regcore.reports import _optuna_plots as plots
from regcore.reports._facts import SpecLike, SweepFacts, describe
from regcore.reports._html import Markup, Note, document, figure, note, num, section, table, text
from regcore.sweeps.results import TrialRow, best_rows

#: One sweep of a batch: its study, its spec (or the stored dict) and its status.
BatchEntry: TypeAlias = tuple[optuna.Study, SpecLike, str | None]


def _row(facts: SweepFacts, rows: list[TrialRow]) -> list[object]:
    first = [facts.name, facts.workload, facts.status or "—", facts.counts_text()]
    if not rows:
        return [*first, "—", "—", "—", "no complete trial yet", facts.objective(), "—"]
    if facts.multi:
        front = f"{len(rows)} Pareto-optimal trials (see the sweep's report)"
        return [*first, "—", "—", "—", front, facts.objectives(), "—"]
    best = rows[0]
    setting = [num(best.l1, "g"), num(best.l2, "g"), num(best.lr, "g"), best.method]
    return [*first, *setting, facts.objective(), num(best.values[0])]


def _card(index: int, study: optuna.Study, facts: SweepFacts) -> Markup:
    title = f"{facts.name} · {facts.workload}"
    fig = plots.history(study, facts)
    if not isinstance(fig, Note):
        fig.update_layout(title=None, margin={"l": 50, "r": 10, "t": 10, "b": 40}, showlegend=False)
    body = figure(fig, div_id=f"sweep-{index}-history", height=300)
    return Markup(f'<div class="card"><h3>{text(title)}</h3>{body}</div>')


def batch_report(sweeps: Sequence[BatchEntry], *, batch_name: str) -> str:
    """One self-contained HTML page (opens offline) comparing the sweeps of a batch.

    ``sweeps`` holds ``(study, spec, status)`` per sweep, ``spec`` a
    :class:`~regcore.spec.SweepSpec` or its stored JSON dict.
    """
    described = [
        (study, describe(study, spec, sweep_id=None, status=status), best_rows(study))
        for study, spec, status in sweeps
    ]
    header = Markup(
        f"<header><h1>{text(batch_name)}</h1>"
        f"<p>Batch of {len(described)} sweep{'s' if len(described) != 1 else ''}.</p></header>"
    )
    if not described:
        return document(
            f"{batch_name} — regsweep batch report",
            header + note("This batch has no sweeps yet."),
        )
    headers = ["sweep", "workload", "status", "trials", "best λ₁", "best λ₂", "lr", "method"]
    headers += ["objective", "best value"]
    best = section(
        "best",
        "Best setting per sweep",
        table(headers, [_row(f, r) for _, f, r in described], numeric=(4, 5, 6, 9)),
    )
    cards = "".join(_card(i, study, f) for i, (study, f, _) in enumerate(described))
    histories = section(
        "history", "Optimization history per sweep", Markup(f'<div class="grid">{cards}</div>')
    )
    return document(f"{batch_name} — regsweep batch report", header + best + histories)
