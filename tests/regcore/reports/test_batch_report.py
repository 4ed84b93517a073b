"""The report of a batch: every sweep's best side by side, in one page."""

from __future__ import annotations

import html
import re

import optuna
from plotly.offline import get_plotlyjs  # type: ignore[import-untyped]

from regcore.reports import batch_report
from tests.regcore.reports.studies import fill, make_spec, make_study

TWO = (("val_loss", "minimize"), ("sparsity", "maximize"))


def table_row(report: str, sweep: str) -> list[str]:
    """The cells (text, unescaped) of the summary table's row for ``sweep``."""
    for row in re.findall(r"<tr>(.*?)</tr>", report, re.S):
        cells = [
            html.unescape(re.sub(r"<[^>]+>", "", c))
            for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
        ]
        if cells and cells[0] == sweep:
            return cells
    raise AssertionError(f"no row for {sweep!r}")


def make_batch() -> list[tuple[optuna.Study, dict[str, object], str | None]]:
    digits, wide, nothing = make_study("digits"), make_study("wide"), make_study("queued")
    fill(digits, n=20, seed=1)
    fill(wide, n=10, methods=["proximal", "weight_decay"], seed=2)
    wide_spec = {**make_spec("wide"), "workload": {"name": "sparse_regression"}}
    return [
        (digits, make_spec("digits"), "completed"),
        (wide, wide_spec, "running"),
        (nothing, make_spec("queued"), "queued"),
    ]


def test_batch_lists_each_sweeps_best() -> None:
    batch = make_batch()
    report = batch_report(batch, batch_name="nightly")
    workloads = ("digits_mlp", "sparse_regression")
    for (study, _, status), workload in zip(batch[:2], workloads, strict=False):
        best = study.best_trial.user_attrs
        name = study.study_name
        assert table_row(report, name) == [
            name,
            workload,
            str(status),
            f"{len(study.trials)} in all: {len(study.trials) - 2} complete, 1 pruned, 1 fail",
            f"{best['l1']:g}",
            f"{best['l2']:g}",
            "0.001",
            best["method"],
            "val_loss (minimize)",
            f"{study.best_value:.6g}",
        ]
    assert table_row(report, "queued")[7] == "no complete trial yet"


def test_batch_inlines_plotly_once_with_a_small_history_per_sweep() -> None:
    report = batch_report(make_batch(), batch_name="nightly")
    assert report.count(get_plotlyjs()) == 1
    assert report.count("Plotly.newPlot(") == 2
    for i in (0, 1):
        assert f'id="sweep-{i}-history"' in report
    assert "No trial has completed yet, so there is no optimization history." in report
    assert "<h3>queued · digits_mlp</h3>" in report


def test_batch_with_two_objectives_counts_its_pareto_front() -> None:
    study = make_study("two", directions=("minimize", "maximize"))
    fill(study, n=20)
    report = batch_report([(study, make_spec("two", objectives=TWO), None)], batch_name="b")
    row = table_row(report, "two")
    assert row[7] == f"{len(study.best_trials)} Pareto-optimal trials (see the sweep's report)"
    assert row[8] == "val_loss (minimize), sparsity (maximize)"
    assert row[2] == "—"
    assert report.count("Plotly.newPlot(") == 1


def test_batch_escapes_names() -> None:
    evil = "<script>alert(1)</script>"
    study = make_study(evil)
    fill(study, n=5)
    report = batch_report([(study, make_spec(evil), "<i>x</i>")], batch_name=evil)
    assert evil not in report
    assert "<i>x</i>" not in report
    assert "<h1>&lt;script&gt;alert(1)&lt;/script&gt;</h1>" in report
    assert table_row(report, evil)[2] == "<i>x</i>"


def test_an_empty_batch_says_so() -> None:
    report = batch_report([], batch_name="nothing yet")
    assert "This batch has no sweeps yet." in report
    assert report.count(get_plotlyjs()) == 1
