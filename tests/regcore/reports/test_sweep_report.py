"""The report of one sweep, built from real in-memory Optuna studies."""

from __future__ import annotations

import html
import re

import optuna
import pytest
from optuna.trial import TrialState
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from regcore.reports import sweep_report
from regcore.spec import parse_spec
from tests.regcore.reports.studies import add_trial, fill, make_spec, make_study

SECTIONS = ("best", "history", "contour", "methods", "sparsity", "importances")


def section(report: str, section_id: str) -> str:
    """The HTML of one ``<section>`` of the report."""
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', report, re.S)
    assert match, f"no section {section_id!r} in the report"
    return match.group(1)


def n_figures(fragment: str) -> int:
    return fragment.count("Plotly.newPlot(")


def notes(fragment: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r'<p class="note">(.*?)</p>', fragment, re.S)]


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
    assert n_figures(section(report, "history")) == 1
    assert n_figures(section(report, "contour")) == 1
    assert n_figures(section(report, "methods")) == 2  # objective and step time by method
    assert n_figures(section(report, "sparsity")) == 1
    assert n_figures(section(report, "importances")) == 1
    assert n_figures(report) == 6


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
    assert f'<pre class="paste"><code>{line}</code></pre>' in best_section
    # The paste block comes before the per-method table, which holds the baseline too.
    assert best_section.index(line) < best_section.index("baseline (λ=0)")
    assert 'method="weight_decay"' in best_section
    assert "l1=0," in best_section


def test_methods_are_compared_from_the_trials_user_attributes(report: str) -> None:
    methods = section(report, "methods")
    assert "val_loss by method" in methods
    assert "Median step time by method" in methods
    for method in ("weight_decay", "decoupled", "loss", "hook", "fused", "proximal"):
        assert f'"name":"{method}"' in methods  # one box per method
    assert "<svg" not in methods  # drawn by plotly in the browser, not by hand


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
        "Parameter importances need at least 2 complete trials, but got 0."
    ]


def test_only_one_method_is_a_note_with_its_step_time() -> None:
    study = make_study()
    fill(study, n=12, methods=["proximal"])
    report = sweep_report(study, spec=make_spec(methods=["proximal"]))
    methods = section(report, "methods")
    assert n_figures(methods) == 0
    (note,) = notes(methods)
    assert note.startswith("Only one method (proximal) was run, so there is nothing to compare")
    assert "median step time" in note
    assert n_figures(section(report, "contour")) == 1  # λ₁ and λ₂ still vary


def test_fixed_l1_has_no_contour_and_says_why() -> None:
    study = make_study()
    fill(study, n=12, methods=["proximal", "hook"], fixed_l1=1e-4)
    report = sweep_report(study, spec=make_spec(methods=["proximal", "hook"], l1=1e-4))
    contour = section(report, "contour")
    assert n_figures(contour) == 0
    (note,) = notes(contour)
    assert note.startswith("λ₁ was not sampled (the trials trained with λ₁ = 0, 0.0001)")
    # method and λ₂ still vary, so importances are drawn.
    assert n_figures(section(report, "importances")) == 1


def test_importances_need_two_parameters_that_vary() -> None:
    study = make_study()
    fill(study, n=6, methods=["proximal"], fixed_l1=1e-4)
    report = sweep_report(study, spec=make_spec(methods=["proximal"], l1=1e-4))
    assert notes(section(report, "importances")) == [
        "Parameter importances need at least 2 sampled parameters that vary, but got 1 (l2)."
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
    assert n_figures(report) == 5


TWO = (("val_loss", "minimize"), ("sparsity", "maximize"))


def test_two_objectives_show_the_pareto_front_instead_of_one_best() -> None:
    study = make_study("two-objectives", directions=("minimize", "maximize"))
    fill(study, n=30)
    report = sweep_report(study, spec=make_spec("two-objectives", objectives=TWO))
    assert '<section id="best">' not in report
    assert '<section id="sparsity">' not in report
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
