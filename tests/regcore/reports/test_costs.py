"""Step time of each method: the cost probe's table per device, or a note why there is none."""

from __future__ import annotations

import optuna
import pytest

from regcore.reports import sweep_report
from tests.regcore.reports.extras import probe
from tests.regcore.reports.pages import cells, notes, section
from tests.regcore.reports.studies import STEP_MS, fill, make_spec, make_study


@pytest.fixture(scope="module")
def study() -> optuna.Study:
    study = make_study()
    fill(study, n=20)
    probe(study)
    return study


def test_probe_table_gives_each_methods_class_time_and_ratio(study: optuna.Study) -> None:
    classes = section(sweep_report(study, spec=make_spec()), "classes")
    assert "<h3>Step time of each method (cost probe on cpu)</h3>" in classes
    head, *rows = cells(classes)
    assert head == ["method", "class", "ms per step", "× no regularizer", "search trials"]
    assert rows[0] == ["none", "none (no regularizer)", "0.9", "1.00×", "—"]
    by_method = {r[0]: r for r in rows}
    assert set(by_method) == set(STEP_MS)  # every listed method, and none
    assert by_method["proximal"][1:4] == ["proximal", "1.25", f"{1.25 / 0.9:.2f}×"]
    assert by_method["loss"][1] == "penalty"
    # Within a class the cheapest first; the search ran it (fused: the cheapest with λ₁).
    penalty = [r[0] for r in rows if r[1] == "penalty"]
    assert penalty == ["weight_decay", "fused", "loss", "hook"]
    ran = {
        t.user_attrs["method"]
        for t in study.trials
        if t.user_attrs.get("method_class") == "penalty"
    }
    assert ran == {"fused"}
    assert int(by_method["fused"][4]) == sum(
        1
        for t in study.trials
        if t.value is not None and t.user_attrs.get("method_class") == "penalty"
    )
    assert int(by_method["hook"][4]) == 0


def test_each_device_has_its_own_table() -> None:
    study = make_study()
    fill(study, n=6)
    probe(study)
    probe(study, device="cuda NVIDIA H200")
    classes = section(sweep_report(study, spec=make_spec()), "classes")
    assert len(cells(classes)) == 2 * 8  # a header and 7 rows per device
    assert "(cost probe on cpu)" in classes
    assert "(cost probe on cuda NVIDIA H200)" in classes


def test_no_probe_is_a_note_and_no_step_times_from_trials() -> None:
    study = make_study()
    fill(study, n=12)
    classes = section(sweep_report(study, spec=make_spec()), "classes")
    assert notes(classes)[-1].startswith("No cost probe was recorded")
    assert "ms per step" not in classes
    assert "median_step_ms" not in classes


def test_one_method_has_no_probe_and_says_why() -> None:
    study = make_study()
    fill(study, n=12, methods=["proximal"])
    classes = section(sweep_report(study, spec=make_spec(methods=["proximal"])), "classes")
    assert notes(classes)[-1] == (
        "Only one method (proximal) was listed, so no cost probe timed the methods: there is "
        "no cheaper implementation to choose."
    )
