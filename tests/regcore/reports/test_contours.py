"""The λ₁ × λ₂ contour: one per method class, from that class's trials alone."""

from __future__ import annotations

import random

import optuna

from regcore.reports import sweep_report
from regcore.reports._contours import MIN_CONTOUR_TRIALS
from tests.regcore.reports.pages import figure_ids, notes, plotted, section
from tests.regcore.reports.studies import add_trial, make_spec, make_study


def study_of(counts: dict[str, int], methods: list[str] | None = None) -> optuna.Study:
    """A baseline and ``counts[class]`` random trials of each class."""
    rng = random.Random(0)
    study = make_study()
    kw = {} if methods is None else {"methods": methods}
    add_trial(study, l1=0.0, l2=0.0, baseline=True, **kw)
    no_l1 = methods is not None and "loss" not in methods and "hook" not in methods
    for cls, n in counts.items():
        for _ in range(n):
            l1 = 0.0 if cls == "penalty" and no_l1 else 10 ** rng.uniform(-6, -2)
            add_trial(study, method_class=cls, l1=l1, l2=10 ** rng.uniform(-6, -2), **kw)
    return study


def test_each_class_with_enough_trials_has_its_own_contour() -> None:
    study = study_of({"penalty": 9, "decoupled": 3, "proximal": 12})
    report = sweep_report(study, spec=make_spec())
    contour = section(report, "contour")
    assert figure_ids(contour) == ["contour-0", "contour-2"]
    assert "<h3>penalty</h3>" in contour
    assert "<h3>proximal</h3>" in contour
    for div_id, cls, n in (("contour-0", "penalty", 9), ("contour-2", "proximal", 12)):
        data, layout = plotted(report, div_id)
        assert layout["title"]["text"] == f"{cls}: val_loss over λ₁ × λ₂ ({n} trials)"
        points = next(t for t in data if t.get("mode") == "markers")
        assert len(points["x"]) == n  # this class's trials only, never another's


def test_a_class_with_too_few_trials_is_a_note_that_names_the_minimum() -> None:
    study = study_of({"penalty": 9, "decoupled": 3, "proximal": 12})
    contour = section(sweep_report(study, spec=make_spec()), "contour")
    assert notes(contour) == [
        f"decoupled has 3 complete trials that sampled both λ₁ and λ₂; a contour needs at "
        f"least {MIN_CONTOUR_TRIALS} (fewer leave the surface to interpolation)."
    ]


def test_a_class_that_cannot_apply_l1_says_so() -> None:
    methods = ["weight_decay", "proximal"]
    study = study_of({"penalty": 10, "proximal": 10}, methods=methods)
    contour = section(sweep_report(study, spec=make_spec(methods=methods)), "contour")
    assert figure_ids(contour) == ["contour-1"]
    assert notes(contour) == [
        "penalty did not sample λ₁ (weight_decay cannot apply it), so it has no λ₁ × λ₂ "
        "surface; its λ₂ is compared with the other classes' below."
    ]


def test_the_baseline_is_in_no_class_contour() -> None:
    study = study_of({"proximal": MIN_CONTOUR_TRIALS})
    report = sweep_report(study, spec=make_spec(methods=["proximal"]))
    data, _ = plotted(report, "contour-0")
    points = next(t for t in data if t.get("mode") == "markers")
    assert len(points["x"]) == MIN_CONTOUR_TRIALS
