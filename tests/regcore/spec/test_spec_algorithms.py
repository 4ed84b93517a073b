"""The sampler and pruner tables: each row is true of Optuna, and the spec's names, schema,
rules and the objects the sweep builds all come from them."""

from __future__ import annotations

import inspect
import subprocess
import sys
from typing import Any

import optuna
import pytest

from regcore.spec import PrunerSpec, SamplerSpec, SpecError, SweepSpec, parse_spec
from regcore.spec._algorithms import (
    PRUNERS,
    SAMPLERS,
    PrunerKind,
    SamplerKind,
    two_objective_samplers,
)
from regcore.spec.suggest import create_pruner, create_sampler, suggest

TWO_OBJECTIVES = [
    {"metric": "val_loss", "direction": "minimize"},
    {"metric": "sparsity", "direction": "maximize"},
]


def spec_data(**changes: Any) -> dict[str, Any]:
    return {
        "name": "tables",
        "workload": {"name": "sparse_regression"},
        "search_space": {"l1": {"choices": [0.0, 1e-3]}, "l2": {"choices": [0.0, 1e-2]}},
        **changes,
    }


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return {p.field: p.message for p in info.value.problems}


def test_spec_name_fields_and_their_schema_list_the_tables() -> None:
    for model, table in ((SamplerSpec, SAMPLERS), (PrunerSpec, PRUNERS)):
        assert model.model_json_schema()["properties"]["name"]["enum"] == list(table)
        assert model.model_fields["name"].default in table


@pytest.mark.parametrize("row", SAMPLERS.values(), ids=lambda r: r.name)
def test_sampler_row_names_a_sampler_and_its_options(row: SamplerKind) -> None:
    cls = row.load()
    assert issubclass(cls, optuna.samplers.BaseSampler)
    keywords = set(inspect.signature(cls).parameters) - {"seed", "search_space"}
    assert bool(keywords) == row.takes_options
    assert ("search_space" in inspect.signature(cls).parameters) == row.listed_values


@pytest.mark.parametrize("row", SAMPLERS.values(), ids=lambda r: r.name)
def test_create_sampler_builds_the_rows_class(row: SamplerKind) -> None:
    data = spec_data(sampler={"name": row.name, "seed": 1})
    if row.path:  # a path walks λ along a log range
        data["search_space"] = {"l1": {"low": 1e-5, "high": 1e-1, "log": True}, "l2": 0.0}
    sampler = create_sampler(parse_spec(data))
    assert isinstance(sampler, row.load())


@pytest.mark.parametrize("name", two_objective_samplers())
def test_samplers_for_two_objectives_sample_a_two_objective_study(name: str) -> None:
    spec = parse_spec(spec_data(sampler={"name": name, "seed": 0}, objectives=TWO_OBJECTIVES))
    study = optuna.create_study(directions=spec.directions, sampler=create_sampler(spec))
    for _ in range(4):
        trial = study.ask()
        point = suggest(trial, spec)
        study.tell(trial, [point.l1, point.l2])
    assert len(study.trials) == 4


def test_single_objective_sampler_names_every_one_for_two_objectives() -> None:
    single = [s.name for s in SAMPLERS.values() if not s.two_objectives]
    assert single == ["cmaes", "path"]
    message = problems_of(spec_data(sampler={"name": "cmaes"}, objectives=TWO_OBJECTIVES))
    assert message["sampler.name"].startswith("cmaes is single-objective; use ")
    for name in two_objective_samplers():
        assert name in message["sampler.name"]
    assert "grid" not in message["sampler.name"]  # it needs listed values, not ranges


@pytest.mark.parametrize("row", PRUNERS.values(), ids=lambda r: r.name)
def test_pruner_row_names_an_optuna_pruner_and_its_options(row: PrunerKind) -> None:
    cls = getattr(optuna.pruners, row.optuna_class)
    assert issubclass(cls, optuna.pruners.BasePruner)
    assert set(row.options) <= set(inspect.signature(cls).parameters)
    assert row.auto <= set(row.options)
    assert set(row.required) <= set(row.options)
    assert set(row.defaults) <= set(row.options)
    required = dict(row.required)
    for key, least in row.options.items():
        if least is not None:
            cls(**{**required, key: least})  # Optuna takes the least value the spec takes
    for key in row.auto:
        cls(**{**required, key: "auto"})


@pytest.mark.parametrize(
    ("row", "key"),
    [(r, k) for r in PRUNERS.values() for k, least in r.options.items() if least is not None],
    ids=lambda x: x if isinstance(x, str) else x.name,
)
def test_pruner_option_below_its_least_value_is_refused(row: PrunerKind, key: str) -> None:
    least = row.options[key]
    assert least is not None
    options = {**row.required, key: least - 1}
    message = problems_of(spec_data(pruner={"name": row.name, "options": options}))
    auto = " or 'auto'" if key in row.auto else ""
    assert message[f"pruner.options.{key}"] == (
        f"must be a whole number ≥ {least}{auto}, but got {least - 1}"
    )


@pytest.mark.parametrize("row", PRUNERS.values(), ids=lambda r: r.name)
def test_create_pruner_builds_the_rows_class(row: PrunerKind) -> None:
    spec = parse_spec(spec_data(pruner={"name": row.name, "options": dict(row.required)}))
    assert isinstance(create_pruner(spec), getattr(optuna.pruners, row.optuna_class))


def test_hyperband_runs_one_resource_per_epoch_unless_the_spec_says_otherwise() -> None:
    spec = parse_spec(spec_data(training={"epochs": 7}, pruner={"name": "hyperband"}))
    pruner = create_pruner(spec)
    assert (pruner._min_resource, pruner._max_resource) == (1, 7)  # type: ignore[attr-defined]
    hyperband = {"name": "hyperband", "options": {"max_resource": 3}}
    spec = parse_spec(spec_data(training={"epochs": 7}, pruner=hyperband))
    assert create_pruner(spec)._max_resource == 3  # type: ignore[attr-defined]


def test_two_objectives_default_to_the_pruner_that_works_with_them() -> None:
    spec = parse_spec(spec_data(objectives=TWO_OBJECTIVES))
    assert PRUNERS[spec.pruner.name].two_objectives
    assert spec.pruner.name == "none"


def test_reading_a_spec_imports_no_optuna() -> None:
    # Only sampler options need Optuna (its constructors check them).
    code = (
        "import sys; from regcore.spec import parse_spec\n"
        f"parse_spec({spec_data(sampler={'name': 'cmaes'}, pruner={'name': 'median'})!r})\n"
        "assert 'optuna' not in sys.modules, 'optuna was imported'\n"
        f"parse_spec({spec_data(sampler={'options': {'n_startup_trials': 3}})!r})\n"
        "assert 'optuna' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_json_schema_is_unchanged_by_the_tables() -> None:
    defs = SweepSpec.model_json_schema()["$defs"]
    assert defs["SamplerSpec"]["properties"]["name"] == {
        "default": "tpe",
        "enum": ["tpe", "random", "grid", "gp", "cmaes", "nsga2", "qmc", "path"],
        "title": "Name",
        "type": "string",
    }
    assert defs["PrunerSpec"]["properties"]["name"] == {
        "default": "hyperband",
        "enum": ["none", "median", "percentile", "hyperband", "successive_halving"],
        "title": "Name",
        "type": "string",
    }


def path_data(**space: Any) -> dict[str, Any]:
    log_range = {"low": 1e-5, "high": 1e-1, "log": True}
    return spec_data(
        sampler={"name": "path"},
        search_space={"l1": log_range, "l2": 0.0, "method": ["loss", "proximal"], **space},
    )


def test_a_path_walks_lambda_alone_along_a_log_range() -> None:
    parse_spec(path_data())  # λ₁ walked, λ₂ fixed
    assert problems_of(path_data(l1={"low": 1e-5, "high": 1e-1})) == {
        "search_space.l1": "a path walks λ geometrically: give a log range "
        "{low: 1.0e-6, high: 1.0e-2, log: true} or a fixed number"
    }
    assert "both are fixed numbers" in problems_of(path_data(l1=0.0))["search_space"]
    lr = problems_of(path_data(lr={"low": 1e-4, "high": 1e-1, "log": True}))
    assert lr["search_space"].startswith("a path walks λ alone; fix lr")


def test_a_path_is_refused_with_a_population_or_two_objectives() -> None:
    message = problems_of({**path_data(), "execution": {"population": 4}})
    assert message["execution.population"].endswith("set execution.population: 1")
    message = problems_of({**path_data(), "objectives": TWO_OBJECTIVES})
    assert message["sampler.name"].startswith("path is single-objective; use ")
