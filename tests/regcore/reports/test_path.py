"""Path mode: the objective along each class's path, and both values of its best point."""

from __future__ import annotations

from optuna.trial import TrialState

from regcore.reports import sweep_report
from tests.regcore.reports.extras import walk_path
from tests.regcore.reports.pages import figure_ids, plotted, section, texts
from tests.regcore.reports.studies import add_trial, fill, make_spec, make_study

PATH = {"sampler": {"name": "path"}}


def test_path_figure_has_a_line_per_class_the_dense_start_and_the_retrain() -> None:
    study = make_study()
    roles = walk_path(study, points=6)
    report = sweep_report(study, spec=make_spec(**PATH))
    assert report.index('<section id="history">') < report.index('<section id="path">')
    assert '<a href="#path">' in report
    assert figure_ids(section(report, "path")) == ["path-plot"]
    data, layout = plotted(report, "path-plot")
    names = [t["name"] for t in data]
    assert names == [
        "penalty",
        "decoupled",
        "proximal",
        f"re-trained from scratch (trial {roles['retrain']})",
    ]
    assert all(len(t["x"]) == 6 for t in data[:3])
    assert data[0]["x"] == sorted(data[0]["x"])  # λ up, step by step
    assert layout["xaxis"]["type"] == "log"
    star = data[3]
    assert star["marker"]["symbol"] == "star"
    assert star["x"] == [study.trials[roles["best_point"]].user_attrs["l2"]]
    assert star["y"] == [0.33]
    assert "dense start, λ = 0 (trial 0): 0.72" in texts(layout)


def test_best_section_gives_the_path_value_the_retrained_one_and_the_best_from_scratch() -> None:
    study = make_study()
    roles = walk_path(study)
    refined = add_trial(
        study,
        method_class="penalty",
        l1=2e-4,
        l2=2e-4,
        values=[0.31],
        attrs={"path_refine": roles["retrain"]},
    )
    best = section(sweep_report(study, spec=make_spec(**PATH)), "best")
    point = study.trials[roles["best_point"]]
    assert f"Path: the best point (trial {point.number}: proximal," in best
    assert f"reached val_loss = {point.value:.6g} warm-started, 0.33 trained from scratch" in best
    assert f"(trial {roles['retrain']}). The best trained from scratch is trial {refined}" in best
    assert "(penalty, λ₁ = 0.0002, λ₂ = 0.0002): 0.31, what to expect." in best


def test_a_retrain_not_finished_yet_is_said() -> None:
    study = make_study()
    roles = walk_path(study, retrain_value=None)
    best = section(sweep_report(study, spec=make_spec(**PATH)), "best")
    assert "it has not been re-trained from scratch yet." in best
    add_trial(
        study,
        method_class="proximal",
        l1=1e-4,
        l2=1e-4,
        state=TrialState.RUNNING,
        attrs={"path_retrain": roles["best_point"]},
    )
    best = section(sweep_report(study, spec=make_spec(**PATH)), "best")
    assert f"its re-train from scratch (trial {len(study.trials) - 1}) is running." in best


def test_a_study_without_path_trials_has_no_path_section() -> None:
    study = make_study()
    fill(study, n=10)
    report = sweep_report(study, spec=make_spec())
    assert '<section id="path">' not in report
    assert "Path:" not in section(report, "best")
