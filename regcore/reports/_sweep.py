"""The report of one sweep: what to decide, what it found, how the search went, what to paste."""

from __future__ import annotations

import optuna

from regcore.confirm import Confirmation
from regcore.reports import _optuna_plots as plots
from regcore.reports._best import best_section
from regcore.reports._contours import MIN_CONTOUR_TRIALS, class_contours
from regcore.reports._costs import cost_tables
from regcore.reports._curves import learning_curves
from regcore.reports._decision import confirm, decision_parts
from regcore.reports._facts import SpecLike, SweepFacts, describe
from regcore.reports._html import (
    Markup,
    Note,
    definitions,
    document,
    figure,
    num,
    section,
    text,
)
from regcore.reports._path import has_path, path_figure
from regcore.reports._trial_plots import class_comparison, sparsity_scatter
from regcore.sweeps.results import TrialRow, best_rows


def _titles(facts: SweepFacts, *, path: bool) -> dict[str, str]:
    """Section id → title, in page order; two objectives trade one best for the Pareto front
    (and have no confirmation, which tests one objective)."""
    metric = facts.metrics[0]
    if facts.multi:
        first = {"pareto-trials": "Pareto front trials"}
        trade_off = {"pareto-front": "Pareto front"}
    else:
        first = {
            "decision": "Decision",
            "best": "Best setting",
            "curves": "Learning curves",
        }
        trade_off = {"sparsity": f"Sparsity vs {metric}"}
    return {
        **first,
        "history": "Optimization history",
        **({"path": "Regularization path"} if path else {}),
        "contour": f"λ₁ × λ₂ contour of {metric}, per method class",
        "classes": "Method classes compared",
        **trade_off,
        "importances": "Parameter importances",
    }


def _best_text(facts: SweepFacts, rows: list[TrialRow]) -> str:
    if not rows:
        return "— (no trial has completed yet)"
    if facts.multi:
        return f"{len(rows)} trials on the Pareto front"
    best = rows[0]
    cls = best.method_class
    shown = best.method if cls in ("?", best.method) else f"{cls}: {best.method}"
    return f"{facts.metrics[0]} = {num(best.values[0])} (trial {best.number}, {shown})"


def _header(
    facts: SweepFacts,
    rows: list[TrialRow],
    result: Confirmation | Note | None,
    titles: dict[str, str],
) -> Markup:
    items: list[tuple[str, object]] = [("Workload", facts.workload)]
    items.append(("Status", facts.status or "—"))
    if facts.sweep_id is not None:
        items.append(("Sweep id", facts.sweep_id))
    if facts.study_name != facts.name:
        items.append(("Optuna study", facts.study_name))
    label = "Objectives" if facts.multi else "Objective"
    items.append((label, facts.objectives()))
    items.append(("Trials", facts.counts_text()))
    if (confirming := facts.confirm_text()) is not None:
        items.append(("Confirmation trials", confirming))
    items.append(("Best", _best_text(facts, rows)))
    if isinstance(result, Confirmation):
        items.append(("Decision", result.verdict))
    links = " · ".join(f'<a href="#{sid}">{text(title)}</a>' for sid, title in titles.items())
    return Markup(
        f"<header><h1>{text(facts.name)}</h1>{definitions(items)}<nav>{links}</nav></header>"
    )


def _contours(study: optuna.Study, facts: SweepFacts) -> list[Markup]:
    parts: list[Markup] = [
        Markup(
            f"<p>One surface per method class (classes are different regularizers), from at "
            f"least {MIN_CONTOUR_TRIALS} complete trials of the class.</p>"
        )
    ]
    for i, (name, fig) in enumerate(class_contours(study, facts)):
        if name:
            parts.append(Markup(f"<h3>{text(name)}</h3>"))
        parts.append(figure(fig, div_id=f"contour-{i}", height=480))
    return parts


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
    result = None if facts.multi else confirm(study)
    titles = _titles(facts, path=has_path(study))
    histories = [
        figure(plots.history(study, facts, index=i), div_id=f"history-{i}")
        for i in range(len(facts.metrics))
    ]
    classes = [
        figure(fig, div_id=f"classes-{i}", height=420)
        for i, fig in enumerate(class_comparison(study, facts))
    ]
    classes += cost_tables(study, facts)
    if facts.multi:
        trade_off = figure(plots.pareto_front(study, facts), div_id="pareto-plot", height=520)
    else:
        trade_off = figure(sparsity_scatter(study, facts), div_id="sparsity-scatter")
    importances = [
        figure(fig, div_id=f"param-importances-{i}", height=380)
        for i, fig in enumerate(plots.importances(study, facts))
    ]
    parts: dict[str, list[Markup]] = {
        "history": histories,
        "contour": _contours(study, facts),
        "classes": classes,
        "pareto-front": [trade_off],
        "sparsity": [trade_off],
        "importances": importances,
    }
    if not facts.multi:
        parts["decision"] = list(decision_parts(result, facts))
        parts["curves"] = [
            figure(fig, div_id=f"curves-{i}", height=400)
            for i, fig in enumerate(learning_curves(study, facts))
        ]
    if "path" in titles:
        parts["path"] = [figure(path_figure(study, facts), div_id="path-plot", height=460)]
    body = [_header(facts, rows, result, titles)]
    for sid, title in titles.items():
        if sid in ("best", "pareto-trials"):
            body.append(best_section(study, facts, rows, sid, title))
        else:
            body.append(section(sid, title, *parts[sid]))
    return document(f"{facts.name} — regsweep report", "".join(body))
