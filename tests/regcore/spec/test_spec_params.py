"""``search_space.params``: a workload's own hyperparameters, searched beside λ₁, λ₂, the method
and the lr. Values keep their types; every value a trial may get is checked against the
workload's ``Params`` model before the sweep starts."""

from __future__ import annotations

import json
from typing import Any, Literal

import optuna
import pytest
from pydantic import BaseModel, ConfigDict, Field

from regcore.spec import SpecError, SweepSpec, parse_spec
from regcore.spec._params import ParamChoices, ParamRange
from regcore.spec.suggest import create_sampler, suggest
from regcore.workloads import TrialContext, available_workloads, training_function

optuna.logging.set_verbosity(optuna.logging.WARNING)


class TypedParams(BaseModel):
    """One parameter of each kind a spec can search."""

    model_config = ConfigDict(extra="forbid")

    width: int = Field(default=64, ge=1, le=1024)
    activation: Literal["relu", "gelu"] = "relu"
    bias: bool = True
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


FUNCTION = "test_spec_params_typed"
if FUNCTION not in available_workloads():

    @training_function(name=FUNCTION, metrics=("val_loss",), params=TypedParams)
    def _typed(ctx: TrialContext) -> dict[str, float]:
        return {"val_loss": 0.0}


SPACE: dict[str, Any] = {"l1": 0, "l2": 1e-4, "method": "fused"}


def spec_of(
    params: dict[str, Any],
    *,
    workload: str = FUNCTION,
    fixed: dict[str, Any] | None = None,
    **more: Any,
) -> dict[str, Any]:
    """A spec searching ``params`` of ``workload`` (``fixed``: its workload.params)."""
    return {
        "name": "params",
        "workload": {"name": workload, "params": fixed or {}},
        "search_space": {**SPACE, "params": params},
        **more,
    }


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return {p.field: p.message for p in info.value.problems}


def round_trips(spec: SweepSpec) -> SweepSpec:
    again = parse_spec(json.loads(json.dumps(spec.to_json_dict())))
    assert again == spec
    assert parse_spec(spec.to_json_dict()) == spec
    return again


def sample(spec: SweepSpec, n: int = 20) -> list[dict[str, Any]]:
    """``n`` trials' searched parameters, as a real study suggests them."""
    study = optuna.create_study(sampler=create_sampler(spec))
    points = []
    for _ in range(n):
        trial = study.ask()
        points.append(suggest(trial, spec).params)
        study.tell(trial, 0.0)
    return points


# ---- accepted and round-tripped --------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "parsed"),
    [
        ("dropout", 0.25, 0.25),
        ("dropout", {"low": 0.0, "high": 0.5}, ParamRange(low=0.0, high=0.5)),
        (
            "dropout",
            {"low": 0.01, "high": 0.5, "log": True},
            ParamRange(low=0.01, high=0.5, log=True),
        ),
        ("width", {"low": 16, "high": 256, "int": True}, ParamRange(low=16, high=256, int=True)),
        ("width", {"low": 16, "high": 256, "int": True, "log": True}, None),
        ("width", {"choices": [64, 128]}, ParamChoices(choices=[64, 128])),
        ("activation", {"choices": ["relu", "gelu"]}, ParamChoices(choices=["relu", "gelu"])),
        ("activation", "gelu", "gelu"),
        ("bias", {"choices": [True, False]}, ParamChoices(choices=[True, False])),
        ("bias", False, False),
    ],
)
def test_each_kind_of_value_is_accepted_and_round_tripped(
    name: str, value: Any, parsed: Any
) -> None:
    spec = parse_spec(spec_of({name: value}))
    if parsed is not None:
        assert spec.search_space.params[name] == parsed
    round_trips(spec)


def test_choices_keep_the_types_they_were_written_with() -> None:
    params = {
        "width": {"choices": [64, 128]},
        "activation": {"choices": ["relu", "gelu"]},
        "bias": {"choices": [True, False]},
        "dropout": {"choices": [0.0, 0.5]},
    }
    spec = round_trips(parse_spec(spec_of(params)))
    kinds = {
        name: [type(v) for v in value.choices]
        for name, value in spec.search_space.params.items()
        if isinstance(value, ParamChoices)
    }
    assert kinds == {
        "width": [int, int],
        "activation": [str, str],
        "bias": [bool, bool],
        "dropout": [float, float],
    }
    for point in sample(spec):
        assert type(point["width"]) is int
        assert point["width"] in (64, 128)
        assert type(point["activation"]) is str
        assert type(point["bias"]) is bool
        assert type(point["dropout"]) is float
        TypedParams.model_validate(point)  # what the function's model checks


def test_an_int_range_gives_whole_numbers_within_its_bounds() -> None:
    spec = round_trips(parse_spec(spec_of({"width": {"low": 2, "high": 9, "int": True}})))
    widths = [point["width"] for point in sample(spec, 30)]
    assert all(type(w) is int for w in widths)
    assert all(2 <= w <= 9 for w in widths)
    assert len(set(widths)) > 1


def test_a_float_range_gives_floats_and_a_fixed_value_stays_as_it_is() -> None:
    spec = parse_spec(spec_of({"dropout": {"low": 0.1, "high": 0.4}, "activation": "gelu"}))
    for point in sample(spec, 10):
        assert type(point["dropout"]) is float
        assert 0.1 <= point["dropout"] <= 0.4
        assert point["activation"] == "gelu"


def test_searched_params_are_optuna_params_of_the_trial() -> None:
    spec = parse_spec(
        spec_of({"width": {"choices": [64, 128]}, "dropout": {"low": 0, "high": 0.5}})
    )
    study = optuna.create_study(sampler=create_sampler(spec))
    trial = study.ask()
    point = suggest(trial, spec)
    assert {k: trial.params[k] for k in point.params} == point.params


def test_the_grid_sampler_walks_listed_params() -> None:
    spec = parse_spec(
        spec_of(
            {"width": {"choices": [64, 128]}, "activation": {"choices": ["relu", "gelu"]}},
            sampler={"name": "grid"},
        )
    )
    seen = {(p["width"], p["activation"]) for p in sample(spec, 4)}
    assert seen == {(64, "relu"), (64, "gelu"), (128, "relu"), (128, "gelu")}


def test_a_built_in_workloads_params_are_searched_too() -> None:
    spec = parse_spec(spec_of({"dropout": {"low": 0.0, "high": 0.4}}, workload="digits_mlp"))
    round_trips(spec)
    spec = parse_spec(
        spec_of(
            {"n_informative": {"low": 1, "high": 10, "int": True}}, workload="sparse_regression"
        )
    )
    round_trips(spec)


# ---- refused, naming the field and the fix --------------------------------------------------


def test_a_float_range_on_an_int_parameter_is_refused_with_the_int_hint() -> None:
    problems = problems_of(spec_of({"width": {"low": 16, "high": 256}}))
    message = problems["search_space.params.width"]
    assert "(the workload's 'width')" in message
    assert "a trial may get" in message
    assert message.endswith("for whole numbers write {low: ..., high: ..., int: true}")


def test_a_value_outside_the_parameters_bounds_is_refused_naming_the_value() -> None:
    problems = problems_of(spec_of({"dropout": {"low": 0.0, "high": 1.0}}))
    message = problems["search_space.params.dropout"]
    assert "less than 1" in message
    assert "a trial may get 1.0" in message
    problems = problems_of(spec_of({"width": {"choices": [64, 2048]}}))
    assert "a trial may get 2048" in problems["search_space.params.width"]


def test_a_choice_the_parameter_does_not_take_is_refused() -> None:
    problems = problems_of(spec_of({"activation": {"choices": ["relu", "tanh"]}}))
    message = problems["search_space.params.activation"]
    assert "'relu' or 'gelu'" in message
    assert "a trial may get 'tanh'" in message


def test_an_unknown_parameter_is_refused_listing_the_workloads_parameters() -> None:
    problems = problems_of(spec_of({"widht": 3}))
    assert problems["search_space.params.widht"] == (
        "the workload has no parameter 'widht' (its parameters: width, activation, bias, dropout)"
    )
    problems = problems_of(spec_of({"depth": 3}, workload="digits_mlp"))
    message = problems["search_space.params.depth"]
    assert "the workload has no parameter 'depth'" in message
    assert "train_size, dropout, split_seed, hidden" in message


def test_a_training_function_without_a_params_model_takes_any_parameter() -> None:
    import tests.plugins.functions  # noqa: F401  (test_misbehaving: no params model)

    spec = parse_spec(spec_of({"anything": {"choices": [1, "two"]}}, workload="test_misbehaving"))
    round_trips(spec)


@pytest.mark.parametrize("name", ["l1", "l2", "lr", "method", "method_class"])
def test_the_names_searched_beside_the_params_are_reserved(name: str) -> None:
    problems = problems_of(spec_of({name: 0.1}))
    assert problems[f"search_space.params.{name}"] == (
        f"{name} is searched as search_space.{name}, not as a workload parameter"
    )


def test_a_parameter_is_named_like_a_python_identifier() -> None:
    problems = problems_of(spec_of({"drop-out": 0.1}))
    message = problems["search_space.params.drop-out"]
    assert message.startswith("name a parameter like a Python identifier (e.g. dropout)")


@pytest.mark.parametrize(
    ("value", "field", "words"),
    [
        ([64, 128], "search_space.params.width", ["write {choices: [64, 128]}"]),
        ({"low": 8, "high": 4}, "search_space.params.width", ["low must be below high"]),
        (
            {"low": 0, "high": 4, "log": True},
            "search_space.params.width.low",
            ["a log range needs low > 0"],
        ),
        (
            {"low": 1.5, "high": 4, "int": True},
            "search_space.params.width",
            ["an int range needs whole bounds"],
        ),
        ({"choices": []}, "search_space.params.width.choices", ["at least 1 item"]),
        ({"choices": [64, 64]}, "search_space.params.width", ["64 is listed twice; list it once"]),
        ({"low": 1, "hihg": 4}, "search_space.params.width.hihg", ["did you mean 'high'"]),
    ],
)
def test_a_malformed_value_is_refused_naming_the_fix(
    value: Any, field: str, words: list[str]
) -> None:
    problems = problems_of(spec_of({"width": value}))
    assert field in problems, problems
    for word in words:
        assert word in problems[field], problems[field]


def test_the_grid_sampler_refuses_a_range_of_a_parameter() -> None:
    problems = problems_of(
        spec_of({"width": {"low": 16, "high": 64, "int": True}}, sampler={"name": "grid"})
    )
    assert problems["search_space.params.width"] == (
        "the grid sampler needs listed values, but width is a range; write {choices: [...]}, "
        "or use another sampler (tpe, random)"
    )


def test_a_value_that_breaks_a_rule_between_parameters_is_refused() -> None:
    """sparse_regression needs n_informative ≤ n_features (100 unless workload.params says):
    a range reaching past it would fail trials at run time, so the spec is refused."""
    problems = problems_of(
        spec_of(
            {"n_informative": {"low": 1, "high": 200, "int": True}}, workload="sparse_regression"
        )
    )
    message = problems["search_space.params.n_informative"]
    assert "n_informative must be at most n_features" in message
    assert message.endswith("a trial may get n_informative=200")


def test_searched_values_are_checked_together_with_the_fixed_workload_params() -> None:
    problems = problems_of(
        spec_of(
            {"n_informative": {"choices": [3, 6]}},
            workload="sparse_regression",
            fixed={"n_features": 5, "n_informative": 2},
        )
    )
    assert "a trial may get n_informative=6" in problems["search_space.params.n_informative"]
    spec = parse_spec(
        spec_of(
            {"n_informative": {"choices": [3, 5]}},
            workload="sparse_regression",
            fixed={"n_features": 5, "n_informative": 2},
        )
    )
    assert spec.workload.params["n_features"] == 5
