"""The best setting and what to paste; the best of each method class beside the λ = 0
baseline (or, with two objectives, the Pareto front's trials). Secondary metrics the trials
recorded (accuracy, R², sparsity) are columns of these tables: a λ that buys a little
val_loss with much accuracy or no sparsity is not the one to take.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import optuna
from optuna.trial import FrozenTrial

from regcore.regularizers import NO_REGULARIZER
from regcore.reports._facts import SweepFacts
from regcore.reports._html import Markup, code, note, num, section, table, text
from regcore.reports._path import path_summary
from regcore.sweeps.results import TrialRow

#: Secondary metrics in the order they are shown; other ``val_*`` metrics follow, sorted.
SECONDARY = ("val_accuracy", "val_r2", "val_top3", "support_f1", "sparsity")
MAX_SECONDARY = 4


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def secondary_metrics(facts: SweepFacts, trials: Iterable[FrozenTrial]) -> list[str]:
    """The metrics besides the objectives that any of ``trials`` recorded."""
    present = {k for t in trials for k, v in t.user_attrs.items() if _number(v)}
    names = [m for m in SECONDARY if m in present]
    names += sorted(k for k in present if k.startswith("val_") and k not in names)
    return [m for m in names if m not in facts.metrics][:MAX_SECONDARY]


def class_name(row: TrialRow) -> str:
    """The row's class (the baseline's: none); a row from before classes existed, its method."""
    if row.baseline:
        return NO_REGULARIZER
    return row.method if row.method_class == "?" else row.method_class


def searched_params(rows: Iterable[TrialRow]) -> list[str]:
    """The other searched parameters (search_space.params) the rows have, lr aside."""
    return list(dict.fromkeys(k for row in rows for k in row.params if k != "lr"))


def _rows(
    rows: list[TrialRow],
    n_values: int,
    extra: list[str],
    attrs: Mapping[int, Mapping[str, object]],
    searched: list[str],
) -> list[list[object]]:
    return [
        [
            "" if row.label == class_name(row) else row.label,  # a class's row: its class says it
            row.number,
            class_name(row),
            row.method,
            num(row.l1, "g"),
            num(row.l2, "g"),
            num(row.lr, "g"),
            *(row.params.get(k, "—") for k in searched),
            *(num(v) for v in row.values[:n_values]),
            *(num(attrs.get(row.number, {}).get(m), ".4g") for m in extra),
            code(row.regularizer_line(), block=False),
        ]
        for row in rows
    ]


def best_section(
    study: optuna.Study, facts: SweepFacts, rows: list[TrialRow], sid: str, title: str
) -> Markup:
    if not rows:
        return section(sid, title, note("No trial has completed yet; the best setting shows here."))
    shown = {row.number for row in rows}
    trials = [t for t in study.get_trials(deepcopy=False) if t.number in shown]
    attrs = {t.number: t.user_attrs for t in trials}
    extra = secondary_metrics(facts, trials)
    n_values = len(facts.metrics)
    searched = searched_params(rows)
    headers = ["", "trial", "class", "method", "λ₁", "λ₂", "lr", *searched, *facts.metrics]
    headers += [*extra, "setting"]
    numeric = range(4, len(headers) - 1)
    if facts.multi:
        explain = note(
            "With two objectives no single trial is best: each of these trials is best for some "
            "trade-off between them (no other trial beats it on both)."
        )
        front = table(headers, _rows(rows, n_values, extra, attrs, searched), numeric=numeric)
        return section(sid, title, explain, front)
    best, others = rows[0], rows[1:]
    values = [num(best.values[0]), *(num(attrs[best.number].get(m), ".4g") for m in extra)]
    setting = [class_name(best), best.method, num(best.l1, "g"), num(best.l2, "g")]
    setting += [num(best.lr, "g"), *(best.params.get(k, "—") for k in searched)]
    parts = [
        table(
            ["class", "method", "λ₁", "λ₂", "lr", *searched, facts.objective(), *extra],
            [[*setting, *values]],
            numeric=range(2, len(setting) + len(values)),
        ),
        Markup(
            "<p>The search's best, from one seed (the decision above says whether it holds "
            "against its λ = 0 twin):</p>"
        ),
        code("\n".join(best.paste())),
    ]
    summary = path_summary(study, facts)
    if summary is not None:
        parts.append(Markup(f'<p class="path">{text(summary)}</p>'))
    if others:
        parts.append(Markup("<h3>Best of each method class, and the λ = 0 baseline</h3>"))
        parts.append(table(headers, _rows(others, 1, extra, attrs, searched), numeric=numeric))
    return section(sid, title, *parts)
