"""The report of one sweep: what it found, how the search went, and what to paste."""

from __future__ import annotations

import optuna

from regcore.reports import _optuna_plots as plots
from regcore.reports._facts import SpecLike, SweepFacts, describe
from regcore.reports._html import (
    Markup,
    code,
    definitions,
    document,
    figure,
    note,
    num,
    section,
    table,
    text,
)
from regcore.reports._trial_plots import method_comparison, sparsity_scatter
from regcore.results import TrialRow, best_rows


def _titles(facts: SweepFacts) -> dict[str, str]:
    """Section id → title, in page order; two objectives trade one best for the Pareto front."""
    metric = facts.metrics[0]
    if facts.multi:
        first = {"pareto-trials": "Pareto front trials"}
        trade_off = {"pareto-front": "Pareto front"}
    else:
        first = {"best": "Best setting"}
        trade_off = {"sparsity": f"Sparsity vs {metric}"}
    return {
        **first,
        "history": "Optimization history",
        "contour": f"λ₁ × λ₂ contour of {metric}",
        "methods": "Methods compared",
        **trade_off,
        "importances": "Parameter importances",
    }


def _best_text(facts: SweepFacts, rows: list[TrialRow]) -> str:
    if not rows:
        return "— (no trial has completed yet)"
    if facts.multi:
        return f"{len(rows)} trials on the Pareto front"
    best = rows[0]
    return f"{facts.metrics[0]} = {num(best.values[0])} (trial {best.number}, {best.method})"


def _header(facts: SweepFacts, rows: list[TrialRow]) -> Markup:
    items: list[tuple[str, object]] = [("Workload", facts.workload)]
    items.append(("Status", facts.status or "—"))
    if facts.sweep_id is not None:
        items.append(("Sweep id", facts.sweep_id))
    if facts.study_name != facts.name:
        items.append(("Optuna study", facts.study_name))
    label = "Objectives" if facts.multi else "Objective"
    items.append((label, facts.objectives()))
    items.append(("Trials", facts.counts_text()))
    items.append(("Best", _best_text(facts, rows)))
    links = " · ".join(
        f'<a href="#{sid}">{text(title)}</a>' for sid, title in _titles(facts).items()
    )
    return Markup(
        f"<header><h1>{text(facts.name)}</h1>{definitions(items)}<nav>{links}</nav></header>"
    )


def _columns(facts: SweepFacts) -> tuple[list[str], bool]:
    """Headers of a settings table, and whether it has a sparsity column of its own."""
    extra = "sparsity" not in facts.metrics
    headers = ["", "trial", "method", "λ₁", "λ₂", "lr", *facts.metrics]
    return [*headers, *(["sparsity"] if extra else []), "paste"], extra


def _settings_rows(rows: list[TrialRow], n_values: int, sparsity: bool) -> list[list[object]]:
    return [
        [
            "" if row.label == row.method else row.label,  # per-method rows: the method says it
            row.number,
            row.method,
            num(row.l1, "g"),
            num(row.l2, "g"),
            num(row.lr, "g"),
            *(num(v) for v in row.values[:n_values]),
            *([num(row.sparsity, ".3g")] if sparsity else []),
            code(row.regularizer_line(), block=False),
        ]
        for row in rows
    ]


def _best(facts: SweepFacts, rows: list[TrialRow], sid: str, title: str) -> Markup:
    if not rows:
        return section(sid, title, note("No trial has completed yet; the best setting shows here."))
    headers, sparsity = _columns(facts)
    numeric = range(3, len(headers) - 1)
    if facts.multi:
        explain = note(
            "With two objectives no single trial is best: each of these trials is best for some "
            "trade-off between them (no other trial beats it on both)."
        )
        return section(
            sid, title, explain, table(headers, _settings_rows(rows, 2, sparsity), numeric=numeric)
        )
    best, others = rows[0], rows[1:]
    setting = [best.method, num(best.l1, "g"), num(best.l2, "g"), num(best.lr, "g")]
    parts = [
        table(
            ["method", "λ₁", "λ₂", "lr", facts.objective()],
            [[*setting, num(best.values[0])]],
            numeric=range(1, 5),
        ),
        Markup("<p>Paste into your training script:</p>"),
        code(best.regularizer_line()),
    ]
    if others:
        parts.append(Markup("<h3>Best of each method, and the λ = 0 baseline</h3>"))
        parts.append(table(headers, _settings_rows(others, 1, sparsity), numeric=numeric))
    return section(sid, title, *parts)


def sweep_report(
    study: optuna.Study,
    *,
    spec: SpecLike,
    sweep_id: str | None = None,
    status: str | None = None,
) -> str:
    """One self-contained HTML page (opens offline) about ``study``, the study of ``spec``.

    ``spec`` is the :class:`~regcore.spec.SweepSpec` or its stored JSON dict; ``sweep_id``
    and ``status`` come from regsweep's own sweep row, when there is one.
    """
    facts = describe(study, spec, sweep_id=sweep_id, status=status)
    rows = best_rows(study)
    titles = _titles(facts)
    histories = [
        figure(plots.history(study, facts, index=i), div_id=f"history-{i}")
        for i in range(len(facts.metrics))
    ]
    methods = [
        figure(fig, div_id=f"methods-{i}", height=420)
        for i, fig in enumerate(method_comparison(study, facts))
    ]
    if facts.multi:
        trade_off = figure(plots.pareto_front(study, facts), div_id="pareto-plot", height=520)
    else:
        trade_off = figure(sparsity_scatter(study, facts), div_id="sparsity-scatter")
    contour = figure(plots.contour(study, facts), div_id="contour-l1-l2", height=520)
    importances = [
        figure(fig, div_id=f"param-importances-{i}", height=380)
        for i, fig in enumerate(plots.importances(study, facts))
    ]
    parts = {
        "history": histories,
        "contour": [contour],
        "methods": methods,
        "pareto-front": [trade_off],
        "sparsity": [trade_off],
        "importances": importances,
    }
    body = [_header(facts, rows)]
    for sid, title in titles.items():
        if sid in ("best", "pareto-trials"):
            body.append(_best(facts, rows, sid, title))
        else:
            body.append(section(sid, title, *parts[sid]))
    return document(f"{facts.name} — regsweep report", "".join(body))
