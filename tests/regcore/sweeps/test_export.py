"""Trials as records, CSV and JSON, from real in-memory Optuna studies."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import FrozenTrial, TrialState, create_trial

from regcore.sweeps.export import to_csv, to_json, trial_records

optuna.logging.set_verbosity(optuna.logging.WARNING)

START = datetime(2025, 3, 1, 6, 0, 0)  # naive local time, as Optuna keeps it

DISTRIBUTIONS = {
    "method": CategoricalDistribution(["weight_decay", "proximal"]),
    "l1": FloatDistribution(1e-6, 1e-2, log=True),
    "l2": FloatDistribution(1e-6, 1e-2, log=True),
}

FIXED = ["number", "state", "value_0", "datetime_start", "datetime_complete", "duration_s"]


def runner_trial(
    values: list[float] | None,
    *,
    state: TrialState = TrialState.COMPLETE,
    params: dict[str, Any],
    seconds: float = 12.5,
    **attrs: Any,
) -> FrozenTrial:
    """A finished trial as the worker's runner leaves it: the point trained with and its
    metrics in user attributes."""
    trial = create_trial(
        state=state,
        values=values,
        params=params,
        distributions={name: DISTRIBUTIONS[name] for name in params},
        user_attrs={
            "method": params["method"],
            "l1": params.get("l1", 0.0),
            "l2": params["l2"],
            "lr": 1e-3,
            **attrs,
        },
    )
    trial.datetime_start = START
    trial.datetime_complete = START + timedelta(seconds=seconds)
    return trial


def runner_study() -> optuna.Study:
    study = optuna.create_study(study_name="export-test")
    study.add_trial(
        runner_trial(
            [0.25],
            params={"method": "proximal", "l1": 1e-4, "l2": 1e-3},
            sparsity=0.5,
            history=[0.9, 0.4, 0.25],
            baseline=False,
        )
    )
    # weight_decay cannot apply L1: l1 is not sampled (a conditional space).
    study.add_trial(
        runner_trial(
            [math.inf],
            params={"method": "weight_decay", "l2": 1e-2},
            seconds=3.0,
            sparsity=0.0,
            device={"kind": "cpu", "index": None, "loss": math.nan},
        )
    )
    study.add_trial(
        runner_trial(
            None,
            state=TrialState.FAIL,
            params={"method": "proximal", "l1": 1e-2, "l2": 1e-6},
            val_loss=math.inf,
            fail_reason="diverged: objective values [inf]",
            final_failure=True,
        )
    )
    return study


def read_csv(text: str) -> tuple[list[str], list[dict[str, str]]]:
    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def strict_json(text: str) -> Any:
    def refuse(constant: str) -> Any:
        raise ValueError(f"not valid JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_records_are_flat_with_the_same_keys_in_column_order() -> None:
    records = trial_records(runner_study())
    assert [r["number"] for r in records] == [0, 1, 2]
    assert [r["state"] for r in records] == ["COMPLETE", "COMPLETE", "FAIL"]
    expected = [
        *FIXED,
        "params_l1",
        "params_l2",
        "params_method",
        "attrs_baseline",
        "attrs_device",
        "attrs_fail_reason",
        "attrs_final_failure",
        "attrs_history",
        "attrs_l1",
        "attrs_l2",
        "attrs_lr",
        "attrs_method",
        "attrs_sparsity",
        "attrs_val_loss",
    ]
    assert all(list(r) == expected for r in records)
    first, wd, failed = records
    assert first["value_0"] == 0.25
    assert first["params_l1"] == 1e-4
    assert first["attrs_history"] == [0.9, 0.4, 0.25]
    assert wd["value_0"] == math.inf
    assert wd["params_l1"] is None  # not sampled for weight_decay
    assert wd["attrs_l1"] == 0.0
    assert failed["value_0"] is None
    assert failed["attrs_val_loss"] == math.inf


def test_times_are_iso_8601_utc_with_the_duration() -> None:
    first = trial_records(runner_study())[0]
    start = START.astimezone(UTC)
    assert first["datetime_start"] == start.isoformat().replace("+00:00", "Z")
    assert first["datetime_start"].endswith("Z")
    complete = datetime.fromisoformat(first["datetime_complete"])
    assert complete == start + timedelta(seconds=12.5)
    assert first["duration_s"] == 12.5


def test_csv_parses_back_with_the_right_columns_and_values() -> None:
    study = runner_study()
    columns, rows = read_csv(to_csv(study))
    assert columns == list(trial_records(study)[0])
    assert columns[: len(FIXED)] == FIXED
    first, wd, failed = rows
    assert first["number"] == "0"
    assert first["state"] == "COMPLETE"
    assert float(first["value_0"]) == 0.25
    assert float(first["duration_s"]) == 12.5
    assert float(first["params_l1"]) == 1e-4
    assert first["params_method"] == "proximal"
    assert first["attrs_baseline"] == "false"
    assert json.loads(first["attrs_history"]) == [0.9, 0.4, 0.25]
    assert first["attrs_fail_reason"] == ""  # missing
    assert float(wd["value_0"]) == math.inf  # a diverged loss stays readable
    assert wd["params_l1"] == ""
    # A dict attribute is a JSON string, its nan as null.
    assert strict_json(wd["attrs_device"]) == {"index": None, "kind": "cpu", "loss": None}
    assert failed["state"] == "FAIL"
    assert failed["value_0"] == ""
    assert failed["attrs_fail_reason"] == "diverged: objective values [inf]"
    assert failed["attrs_final_failure"] == "true"
    assert float(failed["attrs_val_loss"]) == math.inf


def test_csv_cell_with_a_comma_quote_and_newline_round_trips() -> None:
    study = optuna.create_study()
    reason = 'error: ValueError: bad "input", see\nline 2'
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": reason}))
    _, [row] = read_csv(to_csv(study))
    assert row["attrs_fail_reason"] == reason


def test_json_is_valid_with_inf_and_nan_as_null() -> None:
    study = runner_study()
    text = to_json(study)
    records = strict_json(text)
    assert [list(r) for r in records] == [list(r) for r in trial_records(study)]
    first, wd, failed = records
    assert first["value_0"] == 0.25
    assert first["attrs_history"] == [0.9, 0.4, 0.25]  # lists stay lists in JSON
    assert wd["value_0"] is None
    assert wd["attrs_device"] == {"kind": "cpu", "index": None, "loss": None}
    assert failed["attrs_val_loss"] is None
    assert failed["datetime_start"].endswith("Z")
    assert strict_json(to_json(study, indent=2)) == records


def test_multi_objective_columns() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.add_trial(runner_trial([0.3, 0.8], params={"method": "proximal", "l1": 1e-4, "l2": 1e-3}))
    study.add_trial(
        runner_trial(None, state=TrialState.PRUNED, params={"method": "proximal", "l2": 1e-3})
    )
    columns, rows = read_csv(to_csv(study))
    assert columns[:4] == ["number", "state", "value_0", "value_1"]
    assert (float(rows[0]["value_0"]), float(rows[0]["value_1"])) == (0.3, 0.8)
    assert (rows[1]["value_0"], rows[1]["value_1"]) == ("", "")
    records = strict_json(to_json(study))
    assert (records[1]["value_0"], records[1]["value_1"]) == (None, None)


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_value_columns_use_the_study_metric_names() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.set_metric_names(["val_loss", "sparsity"])
    study.add_trial(create_trial(values=[0.3, 0.8]))
    columns, [row] = read_csv(to_csv(study))
    assert columns[2:4] == ["value_val_loss", "value_sparsity"]
    assert row["value_sparsity"] == "0.8"


@pytest.mark.parametrize("directions", [["minimize"], ["minimize", "maximize"]])
def test_empty_study_gives_a_header_and_an_empty_list(
    directions: list[Literal["minimize", "maximize"]],
) -> None:
    study = optuna.create_study(directions=directions)
    columns, rows = read_csv(to_csv(study))
    values = [f"value_{i}" for i in range(len(directions))]
    assert columns == ["number", "state", *values, *FIXED[3:]]
    assert rows == []
    assert strict_json(to_json(study)) == []


def test_running_trial_has_no_completion_time() -> None:
    study = optuna.create_study()
    trial = study.ask()
    trial.set_user_attr("method", "loss")
    [record] = trial_records(study)
    assert record["state"] == "RUNNING"
    assert record["datetime_start"] is not None
    assert (record["datetime_complete"], record["duration_s"]) == (None, None)
