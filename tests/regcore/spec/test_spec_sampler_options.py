"""Sampler options that size memory or time are bounded: every whole-number option of every
sampler has a most (its row's limit, else MAX_COUNT), numbers are finite, and options that
take Python objects are refused — all before any sampler runs."""

from __future__ import annotations

from typing import Any

import pytest

from regcore.spec import SpecError, parse_spec
from regcore.spec._algorithms import MAX_COUNT, SAMPLERS
from regcore.spec._sections import _kind_of, _sampler_keywords

# l1 and l2 as log ranges, so that every sampler, path included, accepts the space.
SPACE = {
    "l1": {"low": 1e-6, "high": 1e-2, "log": True},
    "l2": {"low": 1e-6, "high": 1e-2, "log": True},
    "method": "proximal",
}
WHOLE_NUMBER_OPTIONS = [
    (name, key)
    for name, row in SAMPLERS.items()
    if row.takes_options
    for key, annotation in _sampler_keywords(name).items()
    if _kind_of(annotation) == "int"
]


def sampler_problems(name: str, **options: Any) -> dict[str, str]:
    data = {
        "name": "bounded",
        "workload": {"name": "sparse_regression"},
        "search_space": SPACE,
        "sampler": {"name": name, "options": options},
    }
    with pytest.raises(SpecError) as caught:
        parse_spec(data)
    return {p.field: p.message for p in caught.value.problems}


def test_the_rule_covers_every_sampler_with_whole_number_options() -> None:
    assert {name for name, _ in WHOLE_NUMBER_OPTIONS} == {"tpe", "gp", "cmaes", "nsga2", "path"}


@pytest.mark.parametrize(("name", "key"), WHOLE_NUMBER_OPTIONS, ids=lambda v: str(v))
def test_every_whole_number_option_has_a_most(name: str, key: str) -> None:
    most = SAMPLERS[name].limits.get(key)
    bound = MAX_COUNT if most is None else most.most

    problems = sampler_problems(name, **{key: 10**9})

    assert f"must be at most {bound}" in problems[f"sampler.options.{key}"]
    assert "but got 1000000000" in problems[f"sampler.options.{key}"]


def test_n_ei_candidates_of_a_billion_is_refused_and_the_limit_is_accepted() -> None:
    problems = sampler_problems("tpe", n_ei_candidates=10**9)

    assert "at most 1024" in problems["sampler.options.n_ei_candidates"]
    assert "default is 24" in problems["sampler.options.n_ei_candidates"]
    spec = parse_spec(
        {
            "name": "ok",
            "workload": {"name": "sparse_regression"},
            "search_space": SPACE,
            "sampler": {"options": {"n_ei_candidates": 1024}},
        }
    )
    assert spec.sampler.options == {"n_ei_candidates": 1024}


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_numbers_must_be_finite(value: float) -> None:
    problems = sampler_problems("tpe", prior_weight=value)

    assert "finite" in problems["sampler.options.prior_weight"]


@pytest.mark.parametrize(
    ("name", "key"), [("cmaes", "independent_sampler"), ("cmaes", "source_trials")]
)
def test_options_that_take_python_objects_are_refused(name: str, key: str) -> None:
    problems = sampler_problems(name, **{key: "random"})

    assert "takes a Python object" in problems[f"sampler.options.{key}"]
