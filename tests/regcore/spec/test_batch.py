"""Batch files: deadlines in local time or ISO 8601, matrices expanded into named sweeps,
every problem of every sweep listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from regcore.spec import SpecError
from regcore.spec.batch import parse_batch, resolve_deadline

SPEC: dict[str, Any] = {
    "name": "d",
    "workload": {"name": "diabetes_linear"},
    "search_space": {"l1": 0, "l2": {"low": 1e-6, "high": 1e-2, "log": True}},
}


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as caught:
        parse_batch(data).expand()
    return {p.field: p.message for p in caught.value.problems}


def test_a_clock_time_is_its_next_occurrence_in_local_time() -> None:
    now = datetime(2026, 11, 24, 22, 30, tzinfo=UTC).astimezone()
    morning = resolve_deadline("07:00", now=now)
    assert morning is not None
    local = morning.astimezone()
    assert (local.hour, local.minute) == (7, 0)
    assert timedelta(0) < morning - now <= timedelta(days=1)
    later_today = resolve_deadline(f"{(now + timedelta(hours=1)).hour:02d}:59", now=now)
    assert later_today is not None
    assert later_today - now < timedelta(hours=2)


def test_iso_deadlines_keep_their_offset_and_naive_ones_are_local() -> None:
    stamp = resolve_deadline("2030-01-31T06:00:00+02:00")
    assert stamp == datetime(2030, 1, 31, 4, 0, tzinfo=UTC)
    naive = resolve_deadline("2030-01-31T06:00:00")
    assert naive == datetime(2030, 1, 31, 6, 0).astimezone().astimezone(UTC)


@pytest.mark.parametrize("text", ["soon", "24:00", "7h", "07:61"])
def test_unreadable_deadlines_are_refused(text: str) -> None:
    assert "deadline" in problems_of({"name": "b", "deadline": text, "sweeps": [SPEC]})


def test_a_list_of_sweeps_gets_the_batch_prefix_priority_and_deadline() -> None:
    own_early = {**SPEC, "name": "early", "budget": {"deadline": "2030-01-01T00:00:00Z"}}
    batch = parse_batch(
        {
            "name": "b",
            "deadline": "2030-06-01T00:00:00Z",
            "priority": 3,
            "sweeps": [SPEC, own_early, {**SPEC, "name": "urgent", "priority": 9}],
        }
    )

    specs = batch.expand()

    assert [s.name for s in specs] == ["b-d", "b-early", "b-urgent"]
    assert [s.priority for s in specs] == [3, 3, 9]
    assert specs[0].budget.deadline == datetime(2030, 6, 1, tzinfo=UTC)
    assert specs[1].budget.deadline == datetime(2030, 1, 1, tzinfo=UTC)  # its own is earlier


def test_a_matrix_sets_each_dotted_path_in_every_combination() -> None:
    batch = parse_batch(
        {
            "name": "m",
            "template": SPEC,
            "matrix": {
                "workload": [{"name": "diabetes_linear"}, {"name": "sparse_regression"}],
                "training.seed": [0, 7],
            },
        }
    )

    specs = batch.expand()

    assert [(s.workload.name, s.training.seed) for s in specs] == [
        ("diabetes_linear", 0),
        ("diabetes_linear", 7),
        ("sparse_regression", 0),
        ("sparse_regression", 7),
    ]
    assert specs[3].name == "m-d-sparse_regression-7"


def test_every_problem_of_every_sweep_is_listed() -> None:
    problems = problems_of(
        {"name": "b", "sweeps": [{**SPEC, "training": {"epochs": 0}}, {**SPEC, "name": "x y"}]}
    )

    assert "sweeps.0.training.epochs" in problems
    assert "sweeps.1.name" in problems
    assert problems["sweeps.0.training.epochs"].startswith("b-d: ")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "b"}, ""),
        ({"name": "b", "sweeps": [SPEC], "template": SPEC}, ""),
        ({"name": "b", "sweeps": [SPEC], "matrix": {"training.seed": [1]}}, ""),
        ({"name": "b", "template": SPEC, "matrix": {"training.seed": []}}, ""),
        ({"name": "b", "sweeps": [SPEC, SPEC]}, "sweeps"),
        ({"name": "b", "template": SPEC, "matrix": {"name.x": [1]}}, "matrix.name.x"),
        ({"name": "two words", "sweeps": [SPEC]}, "name"),
        ({"name": "b", "sweeps": [SPEC], "colour": "red"}, "colour"),
    ],
    ids=[
        "nothing to run",
        "both sources",
        "matrix without template",
        "empty matrix entry",
        "same name twice",
        "path through a string",
        "bad batch name",
        "unknown key",
    ],
)
def test_bad_batches_name_the_field(data: dict[str, Any], field: str) -> None:
    assert field in problems_of(data)


@pytest.mark.parametrize("keys", [6, 40], ids=["the issue's 10^6", "10^40"])
def test_a_matrix_is_counted_before_it_is_expanded(keys: int) -> None:
    # 10^40 combinations cannot be expanded at all: refusing them proves they were counted.
    matrix = {f"workload.params.p{i}": list(range(10)) for i in range(keys)}

    with pytest.raises(SpecError) as caught:
        parse_batch({"name": "b", "template": SPEC, "matrix": matrix})

    (problem,) = caught.value.problems
    assert problem.field == ""
    assert "10 × 10 × 10" in problem.message
    assert "at most 500" in problem.message


def test_a_matrix_of_exactly_the_cap_is_accepted_and_one_more_sweep_is_not() -> None:
    twenty, twenty_five = list(range(20)), list(range(25))
    fits = {"training.seed": twenty, "budget.n_trials": twenty_five}
    over = {**fits, "priority": [0, 1]}

    assert parse_batch({"name": "b", "template": SPEC, "matrix": fits}).matrix == fits
    with pytest.raises(SpecError, match="= 1000 sweeps"):
        parse_batch({"name": "b", "template": SPEC, "matrix": over})
    with pytest.raises(SpecError, match="at most 500 sweeps, but got 501"):
        parse_batch({"name": "b", "sweeps": [SPEC] * 501})
