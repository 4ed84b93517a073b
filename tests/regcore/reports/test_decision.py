"""The decision: a confirmation's verdict, its settings and their seeds, first in the report;
and the confirmation's trials kept out of every figure of the search."""

from __future__ import annotations

import optuna
import pytest

from regcore.confirm import confirmation
from regcore.reports import sweep_report
from tests.regcore.reports.extras import confirm, probe
from tests.regcore.reports.pages import cells, figure_ids, notes, plotted, section
from tests.regcore.reports.studies import fill, make_spec, make_study

SEARCH_SECTIONS = ("history", "contour", "classes", "sparsity", "importances")


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    study = make_study()
    fill(study, n=30)
    probe(study)
    confirm(study, top=2, seeds=4, pending=1)
    return study


@pytest.fixture(scope="module")
def report(study: optuna.Study) -> str:
    return sweep_report(study, spec=make_spec(confirm={"seeds": 4, "top": 2}))


def test_decision_comes_first_with_the_verdict(study: optuna.Study, report: str) -> None:
    assert report.index('<section id="decision">') < report.index('<section id="best">')
    result = confirmation(study)
    assert result is not None
    assert result.beats_baseline
    decision = section(report, "decision")
    verdict = result.verdict[0].upper() + result.verdict[1:]
    assert f'<p class="verdict"><strong>Decision:</strong> {verdict}.</p>' in decision
    assert "1 confirmation trials still to run" in verdict
    header = report[report.index("<header>") : report.index("</header>")]
    assert "Confirmation trials" in header
    assert "13 in all: 12 complete, 1 waiting" in header
    assert "33 in all: 31 complete, 1 pruned, 1 fail" in header  # the search's own


def test_decision_table_lists_each_setting_and_the_baseline(
    study: optuna.Study, report: str
) -> None:
    head, *rows = cells(section(report, "decision"))
    assert head == [
        *("setting", "trial", "class", "method", "λ₁", "λ₂", "lr"),
        *("mean ± sd", "n", "wins over its λ = 0 twin", "p (paired, Holm)", ""),
    ]
    result = confirmation(study)
    assert result is not None
    assert [r[0] for r in rows] == ["best", "#2", "baseline (λ=0)"]
    for row, setting in zip(rows, result.settings, strict=True):
        assert row[2:4] == [setting.method_class, setting.method]
        assert row[7] == f"{setting.mean:.5g} ± {setting.sd:.2g}"
        assert row[8] == "4"
    assert rows[0][9] == "4 of 4"  # the best beat its twin on every seed
    assert rows[0][11] == "recommended"
    assert rows[2][1] == "—"
    assert rows[2][9:11] == ["—", "—"]  # the twin is what the others are measured against
    assert float(rows[0][10]) < 0.05


def test_decision_figure_has_error_bars_and_every_seed(study: optuna.Study, report: str) -> None:
    data, layout = plotted(report, "confirmation")
    means, seeds = data
    result = confirmation(study)
    assert result is not None
    assert means["y"] == pytest.approx([s.mean for s in result.settings])
    assert means["error_y"]["array"] == pytest.approx([s.sd for s in result.settings])
    assert len(seeds["y"]) == 12  # 3 settings × 4 seeds; the waiting one has none yet
    assert layout["xaxis"]["ticktext"][-1] == "baseline (λ=0)<br>none"


def test_no_confirmation_says_the_search_is_unconfirmed_and_how_to_confirm() -> None:
    study = make_study()
    fill(study, n=12)
    decision = section(sweep_report(study, spec=make_spec(confirm=False)), "decision")
    (line,) = notes(decision)
    assert line.startswith("Unconfirmed: one seed per setting cannot tell a gain from noise")
    assert "Remove confirm: false (or add confirm: {seeds: 5, top: 3})" in line
    assert not figure_ids(decision)
    asked = sweep_report(study, spec=make_spec(confirm={"seeds": 5, "top": 3}))
    assert notes(section(asked, "decision"))[0].startswith("A confirmation with 5 seeds is asked")


def test_confirmation_trials_leave_the_search_figures_as_they_were() -> None:
    study = make_study()
    fill(study, n=30)
    before = sweep_report(study, spec=make_spec())
    confirm(study, top=3, seeds=5)
    after = sweep_report(study, spec=make_spec())
    for sid in SEARCH_SECTIONS:
        assert section(after, sid) == section(before, sid), f"{sid} drew a confirmation trial"
    data, _ = plotted(after, "history-0")
    assert len(data[0]["x"]) == 31  # the baseline and 30 searched, none of the 20 confirming


def test_no_measurable_gain_recommends_training_without_a_regularizer() -> None:
    study = make_study()
    fill(study, n=12)
    confirm(study, top=1, seeds=4, gain=0.0)
    decision = section(sweep_report(study, spec=make_spec()), "decision")
    assert "Regularization made no measurable difference" in decision
    assert "train without it" in decision
    assert "<code># no Regularizer: λ₁ = λ₂ = 0</code>" in decision
    _, *rows = cells(decision)
    assert [r[0] for r in rows if r[-1] == "recommended"] == ["baseline (λ=0)"]


def test_a_confirmation_that_cannot_be_read_is_a_note(
    study: optuna.Study, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no scipy")

    monkeypatch.setattr("regcore.reports._decision.confirmation", refuse)
    report = sweep_report(study, spec=make_spec())
    assert notes(section(report, "decision")) == [
        "The confirmation could not be read: RuntimeError: no scipy"
    ]
    assert figure_ids(section(report, "history")) == ["history-0"]  # the rest still drawn
