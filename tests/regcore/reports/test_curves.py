"""Learning curves: train and validation loss per epoch, the best trial beside the baseline."""

from __future__ import annotations

import optuna

from regcore.reports import sweep_report
from tests.regcore.reports.pages import figure_ids, notes, plotted, section
from tests.regcore.reports.studies import add_trial, fill, make_spec, make_study


def best_regularized(study: optuna.Study) -> optuna.trial.FrozenTrial:
    complete = [t for t in study.trials if t.value is not None]
    return min((t for t in complete if not t.user_attrs.get("baseline")), key=lambda t: t.value)


def test_curves_show_train_and_val_loss_of_the_best_trial_and_the_baseline() -> None:
    study = make_study()
    fill(study, n=20)
    report = sweep_report(study, spec=make_spec())
    curves = section(report, "curves")
    assert figure_ids(curves) == ["curves-0"]
    assert not notes(curves)
    data, layout = plotted(report, "curves-0")
    best = best_regularized(study)
    names = [f"best: {best.user_attrs['method_class']} (trial {best.number})"] * 2
    names += ["baseline (λ=0) (trial 0)"] * 2
    assert [t["name"] for t in data] == names  # 4 lines: train and val loss of each
    assert [t["y"] for t in data[:2]] == [
        best.user_attrs["curves"][k] for k in ("train_loss", "val_loss")
    ]
    assert data[1]["x"] == list(range(1, 11))  # epochs from 1
    assert [t["showlegend"] for t in data] == [True, False, True, False]
    assert data[2]["line"]["dash"] == "dash"  # the baseline
    titles = [a["text"] for a in layout["annotations"]]
    assert titles == ["train_loss", "val_loss"]


def test_non_finite_epochs_are_gaps() -> None:
    study = make_study()
    fill(study, n=4)
    add_trial(
        study,
        method_class="proximal",
        l1=1e-4,
        l2=1e-3,
        values=[0.1],
        attrs={"curves": {"train_loss": [1.0, None], "val_loss": [0.9, 0.5]}},
    )
    data, _ = plotted(sweep_report(study, spec=make_spec()), "curves-0")
    assert data[0]["y"] == [1.0, None]


def test_a_trial_without_curves_is_a_note() -> None:
    study = make_study()
    add_trial(study, l1=0.0, l2=0.0, baseline=True, curves=False)
    for i in range(5):
        add_trial(study, method_class="proximal", l1=1e-4 * (i + 1), l2=1e-3)
    report = sweep_report(study, spec=make_spec())
    curves = section(report, "curves")
    assert notes(curves) == [
        "Trial 0 (the baseline) recorded no learning curves (trials run before regsweep kept "
        "them have none)."
    ]
    data, _ = plotted(report, "curves-0")
    assert len(data) == 2  # the best trial's two curves still drawn


def test_the_objectives_metric_gets_its_own_panel() -> None:
    study = make_study(directions=("maximize",))
    curves = {"train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7], "val_accuracy": [0.6, 0.8]}
    add_trial(study, l1=0.0, l2=0.0, baseline=True, values=[0.7], attrs={"curves": curves})
    spec = make_spec(objectives=(("val_accuracy", "maximize"),))
    _, layout = plotted(sweep_report(study, spec=spec), "curves-0")
    assert [a["text"] for a in layout["annotations"]] == ["train_loss", "val_loss", "val_accuracy"]
