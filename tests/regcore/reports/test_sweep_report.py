"""The report of one sweep, built from real in-memory Optuna studies."""

from __future__ import annotations

import re

import optuna
import pytest
from optuna.trial import TrialState
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from regcore.reports import sweep_report
from regcore.spec import parse_spec
from tests.regcore.reports.pages import cells, n_figures, notes, plotted, section, texts
from tests.regcore.reports.studies import add_trial, fill, make_spec, make_study

SECTIONS = (
    "decision",
    "best",
    "curves",
    "history",
    "contour",
    "classes",
    "sparsity",
    "importances",
)


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    study = make_study()
    fill(study, n=40)
    return study


@pytest.fixture(scope="module")
def report(study: optuna.Study) -> str:
    return sweep_report(study, spec=make_spec(), sweep_id="abc123", status="completed")


def test_report_has_every_section_in_order(report: str) -> None:
    positions = [report.index(f'<section id="{s}">') for s in SECTIONS]
    assert positions == sorted(positions)
    for s in SECTIONS:
        assert f'<a href="#{s}">' in report, f"the contents do not link to {s}"


def test_header_names_the_sweep_its_state_and_best_value(study: optuna.Study, report: str) -> None:
    header = report[report.index("<header>") : report.index("</header>")]
    for fact in ("digits-l1-vs-l2", "digits_mlp", "completed", "abc123", "val_loss (minimize)"):
        assert fact in header
    assert "43 in all: 41 complete, 1 pruned, 1 fail" in header
    assert f"val_loss = {study.best_value:.6g} (trial {study.best_trial.number}" in header


def test_every_section_draws_its_figures(report: str) -> None:
    assert n_figures(section(report, "decision")) == 0  # no confirmation in this sweep
    assert n_figures(section(report, "curves")) == 1
    assert n_figures(section(report, "history")) == 1
    assert n_figures(section(report, "contour")) == 3  # one per method class
    assert n_figures(section(report, "classes")) == 1  # the objective by class
    assert n_figures(section(report, "sparsity")) == 1
    assert n_figures(section(report, "importances")) == 1
    assert n_figures(report) == 8


def test_plotly_is_inlined_exactly_once_and_nothing_is_fetched(report: str) -> None:
    assert report.count(get_plotlyjs()) == 1
    assert len(re.findall(r"\* plotly\.js v\d", report)) == 1  # the library's banner
    assert report.index(get_plotlyjs()) < report.index("Plotly.newPlot(")
    ours = report.replace(get_plotlyjs(), "")
    assert not re.search(r"<script[^>]*\bsrc=", ours)
    assert not re.search(r"<link\b", ours)
    assert not re.search(r"https?://", ours)  # no address outside plotly.js's own source


def test_best_setting_is_the_true_best_trials_regularizer_line(
    study: optuna.Study, report: str
) -> None:
    best = min(study.get_trials(states=(TrialState.COMPLETE,)), key=lambda t: float(t.values[0]))
    a = best.user_attrs
    line = f'Regularizer(model, l1={a["l1"]:g}, l2={a["l2"]:g}, method="{a["method"]}")'
    best_section = section(report, "best")
    assert f'<pre class="paste"><code>reg = {line}</code></pre>' in best_section
    assert "The search's best, from one seed" in best_section  # not a recommendation
    # The paste block comes before the per-class table, which holds the baseline too.
    assert best_section.index(line) < best_section.index("baseline (λ=0)")
    assert 'method="weight_decay"' in best_section
    assert "l1=0," in best_section


def test_settings_tables_show_class_and_secondary_metrics(study: optuna.Study, report: str) -> None:
    head, *rows = cells(section(report, "best").split("<h3>")[1])
    assert head[:4] == ["", "trial", "class", "method"]
    assert head[7:10] == ["val_loss", "val_accuracy", "sparsity"]
    assert [r[2] for r in rows] == ["decoupled", "penalty", "proximal", "none"]
    assert rows[-1][0] == "baseline (λ=0)"
    for row in rows:
        trial = study.trials[int(row[1])]
        assert row[8] == f"{trial.user_attrs['val_accuracy']:.4g}"
        assert row[9] == f"{trial.user_attrs['sparsity']:.4g}"
        assert trial.user_attrs.get("method_class", "none") == row[2]


def test_classes_are_compared_with_the_baseline_apart(report: str) -> None:
    classes = section(report, "classes")
    assert "val_loss by method class" in classes
    data, layout = plotted(classes, "classes-0")
    assert [trace["name"] for trace in data] == ["penalty", "decoupled", "proximal"]
    assert sum(len(trace["y"]) for trace in data) == 40  # every regularized search trial
    assert "baseline (λ=0): 0.72" in texts(layout)  # the baseline apart, a dashed line
    assert "<svg" not in classes  # drawn by plotly in the browser, not by hand


def test_a_study_from_before_method_classes_falls_back_to_methods() -> None:
    study = make_study()
    fill(study, n=30, old=True)
    report = sweep_report(study, spec=make_spec())
    _, *rows = cells(section(report, "best").split("<h3>")[1])
    assert [r[2] for r in rows][:-1] == [r[3] for r in rows][:-1]  # the class is the method
    assert rows[-1][2] == "none"
    assert '"name":"hook"' in section(report, "classes")
    assert "<h3>weight_decay</h3>" in section(report, "contour")


def test_spec_may_be_a_sweep_spec(study: optuna.Study) -> None:
    spec = parse_spec({**make_spec(), "name": "as-a-spec"})
    report = sweep_report(study, spec=spec)
    assert "<h1>as-a-spec</h1>" in report
    assert "Optuna study" in report  # the study's own name differs from the sweep's


def test_report_is_the_same_for_the_same_study(study: optuna.Study, report: str) -> None:
    assert sweep_report(study, spec=make_spec(), sweep_id="abc123", status="completed") == report


EVIL = "<script>alert(1)</script>"


def test_user_strings_are_escaped() -> None:
    study = make_study(EVIL)
    fill(study, n=8)
    spec = {**make_spec(EVIL), "workload": {"name": '<img src=x onerror="alert(2)">'}}
    report = sweep_report(study, spec=spec, sweep_id="a&b", status='"><b>bold</b>')
    assert EVIL not in report
    assert "<img src=x" not in report
    assert "<b>bold</b>" not in report
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "<title>&lt;script&gt;alert(1)&lt;/script&gt; — regsweep report</title>" in report
    assert "a&amp;b" in report


def test_no_complete_trial_leaves_notes_in_place_of_figures() -> None:
    study = make_study()
    add_trial(study, method="proximal", l1=1e-3, l2=1e-3, state=TrialState.FAIL)
    add_trial(study, method="hook", l1=1e-3, l2=1e-3, state=TrialState.RUNNING)
    report = sweep_report(study, spec=make_spec(), status="running")
    assert n_figures(report) == 0
    assert report.count(get_plotlyjs()) == 1
    assert "— (no trial has completed yet)" in report
    assert "2 in all: 0 complete, 1 fail, 1 running" in report
    for s in SECTIONS:
        assert notes(section(report, s)), f"section {s!r} says nothing about why it is empty"
    assert notes(section(report, "importances")) == [
        "Parameter importances need at least 10 complete regularized trials (fewer rank "
        "noise), but got 0."
    ]


def test_only_one_class_is_a_note_with_the_baseline() -> None:
    study = make_study()
    fill(study, n=12, methods=["proximal"])
    report = sweep_report(study, spec=make_spec(methods=["proximal"]))
    classes = section(report, "classes")
    assert n_figures(classes) == 0
    assert notes(classes)[0] == (
        "Only one regularizer (proximal, run as proximal) was searched, so there is nothing "
        "to compare; the baseline (λ = 0) reached val_loss = 0.72."
    )
    assert n_figures(section(report, "contour")) == 1  # λ₁ and λ₂ still vary


def test_fixed_l1_has_no_contour_and_says_why() -> None:
    study = make_study()
    fill(study, n=12, methods=["proximal", "hook"], fixed_l1=1e-4)
    report = sweep_report(study, spec=make_spec(methods=["proximal", "hook"], l1=1e-4))
    contour = section(report, "contour")
    assert n_figures(contour) == 0
    (note,) = notes(contour)
    assert note.startswith("λ₁ was not sampled (the trials trained with λ₁ = 0.0001)")
    # the class and λ₂ still vary, so importances are drawn.
    assert n_figures(section(report, "importances")) == 1


def test_importances_need_two_parameters_that_vary() -> None:
    study = make_study()
    fill(study, n=12, methods=["proximal"], fixed_l1=1e-4)
    report = sweep_report(study, spec=make_spec(methods=["proximal"], l1=1e-4))
    assert notes(section(report, "importances")) == [
        "Parameter importances need at least 2 sampled parameters that vary, but got 1 (l2)."
    ]


def test_importances_below_the_minimum_of_trials_are_a_note() -> None:
    study = make_study()
    fill(study, n=9)  # the baseline makes 10 complete trials, but it samples nothing
    report = sweep_report(study, spec=make_spec())
    assert notes(section(report, "importances")) == [
        "Parameter importances need at least 10 complete regularized trials (fewer rank "
        "noise), but got 9."
    ]


def test_an_optuna_failure_becomes_a_note(
    study: optuna.Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("cannot rank these")

    monkeypatch.setattr(optuna.visualization, "plot_param_importances", refuse)
    report = sweep_report(study, spec=make_spec())
    assert notes(section(report, "importances")) == [
        "The parameter importances could not be drawn: RuntimeError: cannot rank these"
    ]
    assert n_figures(report) == 7


TWO = (("val_loss", "minimize"), ("sparsity", "maximize"))


def test_two_objectives_show_the_pareto_front_instead_of_one_best() -> None:
    study = make_study("two-objectives", directions=("minimize", "maximize"))
    fill(study, n=30)
    report = sweep_report(study, spec=make_spec("two-objectives", objectives=TWO))
    for single in ("decision", "best", "curves", "sparsity"):
        assert f'<section id="{single}">' not in report
    trials = section(report, "pareto-trials")
    assert len(study.best_trials) >= 2
    for t in study.best_trials:
        a = t.user_attrs
        line = f'Regularizer(model, l1={a["l1"]:g}, l2={a["l2"]:g}, method="{a["method"]}")'
        assert f"<code>{line}</code>" in trials
    assert trials.count("<tr>") == 1 + len(study.best_trials)
    assert "<th>sparsity</th>" in trials
    assert trials.count("<th>sparsity</th>") == 1
    assert n_figures(section(report, "pareto-front")) == 1
    assert n_figures(section(report, "history")) == 2  # one per objective
    assert f"{len(study.best_trials)} trials on the Pareto front" in report
    assert "val_loss (minimize), sparsity (maximize)" in report
