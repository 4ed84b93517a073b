"""SweepSpec: good specs load with their defaults filled in; a bad one is refused with every
problem listed, each naming its field and the fix."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from regcore.regularizers import L1_METHODS, METHODS, OPTIMIZERS, optimizers_taking
from regcore.spec import (
    RUNNER_METRICS,
    Choices,
    Range,
    SearchSpace,
    SpecError,
    SweepSpec,
    load_spec,
    parse_spec,
)
from regcore.workloads import available_workloads, get_workload

DROP = object()  # in a change: remove this key

MINIMAL: dict[str, Any] = {
    "name": "digits-l1",
    "workload": {"name": "digits_mlp"},
    "search_space": {"l1": 0, "l2": {"low": 1.0e-6, "high": 1.0e-2, "log": True}},
}

DESIGN_EXAMPLE = """\
name: digits-l1-vs-l2              # unique per database; becomes the Optuna study name
workload: {name: digits_mlp, params: {hidden: [128]}}
search_space:
  l1: {low: 1.0e-6, high: 1.0e-2, log: true}   # or a number, or {choices: [0, 1e-5, 1e-4]}
  l2: {low: 1.0e-6, high: 1.0e-2, log: true}
  method: [weight_decay, decoupled, loss, hook, fused, proximal]   # or one name
  lr: {low: 1.0e-4, high: 1.0e-1, log: true}   # optional; else optimizer.lr
optimizer: {name: adam, lr: 1.0e-3}            # sgd | adam | rmsprop (+ momentum, betas)
training: {epochs: 10, batch_size: 128, seed: 0, device: auto, precision: fp32}
objectives: [{metric: val_loss, direction: minimize}]   # two entries → multi-objective
sampler: {name: tpe, seed: 0}                  # tpe random grid gp cmaes nsga2 qmc
pruner: {name: hyperband}                      # none median percentile hyperband successive_halving
budget: {n_trials: 60, timeout_s: null, deadline: null}
priority: 0
notify: {webhook_url: null}
"""

TWO_OBJECTIVES = [
    {"metric": "val_loss", "direction": "minimize"},
    {"metric": "sparsity", "direction": "maximize"},
]


def merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in changes.items():
        if value is DROP:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def spec_with(**changes: Any) -> dict[str, Any]:
    return merged(MINIMAL, changes)


def problems_of(data: Any) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return {p.field: p.message for p in info.value.problems}


@pytest.fixture(scope="module", autouse=True)
def _builtin_workloads() -> None:
    get_workload("digits_mlp")  # the built-ins are registered: nothing here is stubbed


# ---- good specs ----------------------------------------------------------------------------

GOOD: dict[str, dict[str, Any]] = {
    "minimal": {},
    "l1 choices with 0": {"search_space": {"l1": {"choices": [0, 1e-5, 1e-4]}}},
    "l1 fixed non-zero with several methods": {"search_space": {"l1": 1e-4}},
    "linear range from 0": {"search_space": {"l2": {"low": 0, "high": 1e-3, "log": False}}},
    "single method string": {"search_space": {"method": "proximal"}},
    "weight_decay alone with l1 0": {"search_space": {"method": "weight_decay"}},
    "weight_decay alone, l1 choices with 0": {
        "search_space": {"method": ["weight_decay"], "l1": {"choices": [0, 1e-4]}}
    },
    "two objectives": {"objectives": TWO_OBJECTIVES},
    "two objectives, nsga2": {"objectives": TWO_OBJECTIVES, "sampler": {"name": "nsga2"}},
    "lr range": {"search_space": {"lr": {"low": 1e-4, "high": 1e-1, "log": True}}},
    "lr choices": {"search_space": {"lr": {"choices": [1e-3, 1e-2]}}},
    "sgd with momentum": {"optimizer": {"name": "sgd", "lr": 0.1, "momentum": 0.9}},
    "rmsprop with momentum": {"optimizer": {"name": "rmsprop", "momentum": 0.5}},
    "adam with betas": {"optimizer": {"name": "adam", "betas": [0.8, 0.99]}},
    "grid over choices and numbers": {
        "sampler": {"name": "grid"},
        "search_space": {"l1": {"choices": [0, 1e-4]}, "l2": 1e-3, "lr": {"choices": [0.01]}},
    },
    "cmaes with a method list": {"sampler": {"name": "cmaes", "seed": 3}},
    "gp with a method list": {"sampler": {"name": "gp"}},
    "qmc without a seed": {"sampler": {"name": "qmc", "seed": None}},
    "tpe options": {"sampler": {"options": {"n_startup_trials": 5, "multivariate": False}}},
    "percentile pruner": {"pruner": {"name": "percentile", "options": {"percentile": 25.0}}},
    "hyperband options": {"pruner": {"options": {"min_resource": 2, "max_resource": "auto"}}},
    "successive halving auto": {
        "pruner": {"name": "successive_halving", "options": {"min_resource": "auto"}}
    },
    "no pruner": {"pruner": {"name": "none"}},
    "fewest trials": {"budget": {"n_trials": 1}},
    "most trials": {"budget": {"n_trials": 100_000}},
    "timeout and deadline": {
        "budget": {"timeout_s": 3600, "deadline": "2030-01-31T06:00:00+02:00"}
    },
    "cuda device, bf16": {"training": {"device": "cuda:1", "precision": "bf16"}},
    "webhook": {"notify": {"webhook_url": "https://hooks.example.com/sweep?x=1"}},
    "priority": {"priority": -5},
    "numbers as YAML 1.1 strings": {"search_space": {"l1": {"choices": ["0", "1e-4"]}}},
    "maximized workload metric": {
        "objectives": [{"metric": "val_accuracy", "direction": "maximize"}]
    },
    "runner metric": {"objectives": [{"metric": "l1_norm", "direction": "minimize"}]},
    "workload params": {"workload": {"params": {"hidden": [64, 64]}}},
    "name with dots": {"name": "Digits_v2.L1-sweep"},
}


@pytest.mark.parametrize("changes", GOOD.values(), ids=GOOD.keys())
def test_good_spec_is_accepted_and_round_trips(changes: dict[str, Any]) -> None:
    spec = parse_spec(spec_with(**changes))
    data = spec.to_json_dict()
    assert parse_spec(json.loads(json.dumps(data))) == spec
    assert parse_spec(data).to_json_dict() == data


def test_minimal_spec_gets_the_design_defaults() -> None:
    data = parse_spec(MINIMAL).to_json_dict()
    assert data["search_space"]["method"] == list(METHODS)
    assert data["search_space"]["lr"] is None
    assert data["search_space"]["params"] == {}
    assert data["optimizer"] == {
        "name": "adam",
        "lr": 1e-3,
        "momentum": None,
        "nesterov": None,
        "betas": None,
        "lr_mult": {},
    }
    assert data["training"] == {
        "epochs": 10,
        "batch_size": 128,
        "seed": 0,
        "device": "auto",
        "precision": "fp32",
        "scheduler": {
            "name": "none",
            "warmup_epochs": 0.0,
            "min_lr_ratio": None,
            "step_epochs": None,
            "gamma": None,
            "patience": None,
        },
        "clip_grad_norm": None,
        "num_workers": 0,
        "early_stopping": None,
    }
    assert data["regularize"] == {"exclude": None, "only": None}
    assert data["objectives"] == [{"metric": "val_loss", "direction": "minimize"}]
    # λ as log ranges, nothing else searched: the measured default is a path, confirmed.
    assert data["sampler"] == {"name": "path", "seed": 0, "options": {}}
    assert data["pruner"] == {"name": "none", "options": {}}
    assert data["confirm"] == {"seeds": 5, "top": 3, "vary_split": True}
    assert data["budget"] == {"n_trials": 60, "timeout_s": None, "deadline": None}
    assert data["priority"] == 0
    assert data["notify"] == {"webhook_url": None}


def test_workload_params_are_stored_with_their_defaults() -> None:
    spec = parse_spec(MINIMAL)
    defaults = get_workload("digits_mlp").Params().model_dump(mode="json")
    assert spec.workload.params == defaults


def test_design_example_loads_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "digits.yaml"
    path.write_text(DESIGN_EXAMPLE)
    spec = load_spec(path)
    assert spec.name == "digits-l1-vs-l2"
    assert spec.methods == METHODS
    assert spec.search_space.l1 == Range(low=1e-6, high=1e-2, log=True)
    assert spec.search_space.lr == Range(low=1e-4, high=1e-1, log=True)
    assert spec.directions == ["minimize"]
    assert not spec.is_multi_objective
    assert spec.pruner.name == "hyperband"
    assert parse_spec(spec.to_json_dict()) == spec


def test_same_spec_from_json_and_yaml(tmp_path: Path) -> None:
    data = spec_with(search_space={"l1": {"choices": [0, 1e-5]}}, objectives=TWO_OBJECTIVES)
    (tmp_path / "s.json").write_text(json.dumps(data))
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(data))
    (tmp_path / "s.yml").write_text(yaml.safe_dump(data))
    (tmp_path / "spec").write_text(json.dumps(data))  # no suffix: read as YAML, which reads JSON
    specs = [load_spec(tmp_path / n) for n in ("s.json", "s.yaml", "s.yml", "spec")]
    assert all(s == specs[0] for s in specs)
    assert load_spec(str(tmp_path / "s.yaml")) == specs[0]


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: s\nworkload: {name: digits_mlp}\n"
        "search_space: {l1: {choices: [0, 1e-5, 1e-4]}, l2: 1e-3, lr: {low: 1e-4, high: 1e-1}}\n"
    )
    space = load_spec(path).search_space
    assert space.l1 == Choices(choices=[0.0, 1e-5, 1e-4])
    assert space.l2 == 1e-3
    assert space.lr == Range(low=1e-4, high=1e-1)


def test_single_method_and_lists_give_methods() -> None:
    assert parse_spec(spec_with(search_space={"method": "proximal"})).methods == ("proximal",)
    spec = parse_spec(spec_with(search_space={"method": ["loss", "hook"]}))
    assert spec.methods == ("loss", "hook")


def test_two_objectives_make_a_multi_objective_spec_without_a_pruner() -> None:
    spec = parse_spec(spec_with(objectives=TWO_OBJECTIVES))
    assert spec.is_multi_objective
    assert spec.directions == ["minimize", "maximize"]
    assert spec.pruner.name == "none"


# ---- bad specs: each names its field ---------------------------------------------------------

BAD: list[tuple[str, dict[str, Any], str]] = [
    ("name with a space", {"name": "my sweep"}, "name"),
    ("empty name", {"name": ""}, "name"),
    ("name too long", {"name": "x" * 129}, "name"),
    ("no name", {"name": DROP}, "name"),
    ("no workload", {"workload": DROP}, "workload"),
    ("workload as text", {"workload": "digits_mlp"}, "workload"),
    ("unknown workload", {"workload": {"name": "digits_mpl"}}, "workload.name"),
    ("unknown workload param", {"workload": {"params": {"hiden": [3]}}}, "workload.params.hiden"),
    ("bad workload param", {"workload": {"params": {"hidden": "wide"}}}, "workload.params.hidden"),
    ("no search space", {"search_space": DROP}, "search_space"),
    ("no l1", {"search_space": {"l1": DROP}}, "search_space.l1"),
    ("negative l1", {"search_space": {"l1": -1e-4}}, "search_space.l1"),
    ("l1 as a word", {"search_space": {"l1": "small"}}, "search_space.l1"),
    ("l1 nan", {"search_space": {"l1": math.nan}}, "search_space.l1"),
    ("l2 infinite", {"search_space": {"l2": math.inf}}, "search_space.l2"),
    ("l1 boolean", {"search_space": {"l1": True}}, "search_space.l1"),
    ("l1 bare list", {"search_space": {"l1": [0, 1e-4]}}, "search_space.l1"),
    ("log range from 0", {"search_space": {"l2": {"low": 0.0}}}, "search_space.l2.low"),
    ("low above high", {"search_space": {"l2": {"low": 1, "high": 1e-3}}}, "search_space.l2"),
    ("range typo", {"search_space": {"l2": {"lgo": True}}}, "search_space.l2.lgo"),
    ("range without high", {"search_space": {"l2": {"high": DROP}}}, "search_space.l2.high"),
    ("empty choices", {"search_space": {"l1": {"choices": []}}}, "search_space.l1.choices"),
    (
        "negative choice",
        {"search_space": {"l1": {"choices": [0, -1]}}},
        "search_space.l1.choices.1",
    ),
    (
        "repeated choice",
        {"search_space": {"l1": {"choices": [0, 0.0]}}},
        "search_space.l1.choices.1",
    ),
    ("unknown method", {"search_space": {"method": "proxmal"}}, "search_space.method"),
    (
        "unknown method in list",
        {"search_space": {"method": ["loss", "l1"]}},
        "search_space.method.1",
    ),
    ("no methods", {"search_space": {"method": []}}, "search_space.method"),
    ("method twice", {"search_space": {"method": ["loss", "loss"]}}, "search_space.method.1"),
    ("fixed lr", {"search_space": {"lr": 0.01}}, "search_space.lr"),
    ("lr range from 0", {"search_space": {"lr": {"low": 0, "high": 0.1}}}, "search_space.lr"),
    ("lr choice 0", {"search_space": {"lr": {"choices": [0, 0.1]}}}, "search_space.lr"),
    ("unknown optimizer", {"optimizer": {"name": "adamw"}}, "optimizer.name"),
    ("zero lr", {"optimizer": {"lr": 0}}, "optimizer.lr"),
    ("momentum for adam", {"optimizer": {"momentum": 0.9}}, "optimizer.momentum"),
    ("betas for sgd", {"optimizer": {"name": "sgd", "betas": [0.9, 0.99]}}, "optimizer.betas"),
    ("momentum 1", {"optimizer": {"name": "sgd", "momentum": 1.0}}, "optimizer.momentum"),
    ("three betas", {"optimizer": {"betas": [0.9, 0.99, 0.999]}}, "optimizer.betas"),
    ("beta above 1", {"optimizer": {"betas": [0.9, 1.5]}}, "optimizer.betas.1"),
    ("weight decay", {"optimizer": {"weight_decay": 1e-4}}, "optimizer.weight_decay"),
    ("zero epochs", {"training": {"epochs": 0}}, "training.epochs"),
    ("fractional epochs", {"training": {"epochs": 1.5}}, "training.epochs"),
    ("zero batch", {"training": {"batch_size": 0}}, "training.batch_size"),
    ("negative seed", {"training": {"seed": -1}}, "training.seed"),
    ("gpu device", {"training": {"device": "gpu"}}, "training.device"),
    ("bad cuda index", {"training": {"device": "cuda:x"}}, "training.device"),
    ("fp16", {"training": {"precision": "fp16"}}, "training.precision"),
    ("epoch typo", {"training": {"epoch": 3}}, "training.epoch"),
    ("no objectives", {"objectives": []}, "objectives"),
    ("three objectives", {"objectives": [*TWO_OBJECTIVES, TWO_OBJECTIVES[0]]}, "objectives"),
    (
        "unknown metric",
        {"objectives": [{"metric": "acc", "direction": "maximize"}]},
        "objectives.0.metric",
    ),
    (
        "bad direction",
        {"objectives": [{"metric": "val_loss", "direction": "down"}]},
        "objectives.0.direction",
    ),
    ("no direction", {"objectives": [{"metric": "val_loss"}]}, "objectives.0.direction"),
    (
        "maximized loss",
        {"objectives": [{"metric": "val_loss", "direction": "maximize"}]},
        "objectives.0.direction",
    ),
    (
        "same metric twice",
        {"objectives": [TWO_OBJECTIVES[0], TWO_OBJECTIVES[0]]},
        "objectives.1.metric",
    ),
    ("unknown sampler", {"sampler": {"name": "bayes"}}, "sampler.name"),
    ("negative sampler seed", {"sampler": {"seed": -3}}, "sampler.seed"),
    ("seed in sampler options", {"sampler": {"options": {"seed": 1}}}, "sampler.options.seed"),
    (
        "grid options",
        {"sampler": {"name": "grid", "options": {"x": 1}}, "search_space": {"l2": 0}},
        "sampler.options.x",
    ),
    (
        "cmaes with two objectives",
        {"sampler": {"name": "cmaes"}, "objectives": TWO_OBJECTIVES},
        "sampler.name",
    ),
    ("random options", {"sampler": {"name": "random", "options": {"x": 1}}}, "sampler.options.x"),
    (
        "misspelt tpe option",
        {"sampler": {"options": {"n_startup_trial": 3}}},
        "sampler.options.n_startup_trial",
    ),
    (
        "tpe option of the wrong type",
        {"sampler": {"options": {"multivariate": 1}}},
        "sampler.options.multivariate",
    ),
    (
        "a sampler option that takes a function",
        {"sampler": {"options": {"gamma": "lambda n: n // 10"}}},
        "sampler.options.gamma",
    ),
    (
        "a value Optuna's sampler refuses",
        {"sampler": {"name": "nsga2", "options": {"population_size": 1}}},
        "sampler.options",
    ),
    ("unknown pruner", {"pruner": {"name": "asha"}}, "pruner.name"),
    (
        "unknown pruner option",
        {"pruner": {"name": "median", "options": {"warmup": 2}}},
        "pruner.options.warmup",
    ),
    ("percentile without percentile", {"pruner": {"name": "percentile"}}, "pruner.options"),
    (
        "percentile above 100",
        {"pruner": {"name": "percentile", "options": {"percentile": 150}}},
        "pruner.options.percentile",
    ),
    (
        "reduction factor 1",
        {"pruner": {"options": {"reduction_factor": 1}}},
        "pruner.options.reduction_factor",
    ),
    (
        "options for no pruner",
        {"pruner": {"name": "none", "options": {"x": 1}}},
        "pruner.options.x",
    ),
    (
        "pruner with two objectives",
        {"pruner": {"name": "hyperband"}, "objectives": TWO_OBJECTIVES},
        "pruner.name",
    ),
    ("zero trials", {"budget": {"n_trials": 0}}, "budget.n_trials"),
    ("too many trials", {"budget": {"n_trials": 100_001}}, "budget.n_trials"),
    ("trials as a word", {"budget": {"n_trials": "many"}}, "budget.n_trials"),
    ("zero timeout", {"budget": {"timeout_s": 0}}, "budget.timeout_s"),
    ("infinite timeout", {"budget": {"timeout_s": math.inf}}, "budget.timeout_s"),
    ("naive deadline", {"budget": {"deadline": "2030-01-31T06:00:00"}}, "budget.deadline"),
    ("garbled deadline", {"budget": {"deadline": "tomorrow morning"}}, "budget.deadline"),
    ("priority as a word", {"priority": "high"}, "priority"),
    ("huge priority", {"priority": 2**31}, "priority"),
    ("ftp webhook", {"notify": {"webhook_url": "ftp://example.com/x"}}, "notify.webhook_url"),
    ("webhook without host", {"notify": {"webhook_url": "https://"}}, "notify.webhook_url"),
    ("top-level epochs", {"epochs": 3}, "epochs"),
    ("top-level typo", {"nmae": "x"}, "nmae"),
]


@pytest.mark.parametrize(("changes", "field"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_spec_names_the_field(changes: dict[str, Any], field: str) -> None:
    problems = problems_of(spec_with(**changes))
    assert field in problems, problems
    assert problems[field]
    assert not problems[field].startswith(("Value error", "Input should"))


def test_every_problem_is_listed_together() -> None:
    data = spec_with(
        name="bad name",
        workload={"params": {"hiden": [3]}},
        search_space={"l1": -1, "method": ["loss", "nope"]},
        optimizer={"momentum": 0.9},
        training={"epoch": 3, "batch_size": 0},
        sampler={"name": "grid"},
        budget={"n_trials": 0, "deadline": "soon"},
        notify={"webhook_url": "mailto:me@example.com"},
        extra=1,
    )
    data["search_space"]["l2"] = {"low": 1e-6, "high": 1e-2, "log": True}  # grid needs choices
    assert set(problems_of(data)) == {
        "extra",
        "name",
        "workload.params.hiden",
        "search_space.l1",
        "search_space.l2",  # grid with a range, reported despite the other problems
        "search_space.method.1",
        "optimizer.momentum",
        "training.epoch",
        "training.batch_size",
        "budget.n_trials",
        "budget.deadline",
        "notify.webhook_url",
    }


def test_spec_error_lists_one_problem_per_line() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(spec_with(name="a b", training={"epochs": 0}))
    lines = str(info.value).splitlines()
    assert len(lines) == len(info.value.problems) == 2
    assert lines[0].startswith("name: ")
    assert lines[1] == "training.epochs: must be ≥ 1, but got 0"
    assert isinstance(info.value, ValueError)


def test_pydantic_validation_lists_the_same_problems() -> None:
    # What the REST layer sees when it validates a body as a SweepSpec.
    data = spec_with(training={"epochs": 0}, sampler={"name": "grid"})
    with pytest.raises(ValidationError) as info:
        SweepSpec.model_validate(data)
    locs = {tuple(e["loc"]) for e in info.value.errors()}
    assert locs == {("training", "epochs"), ("search_space", "l2")}


# ---- messages: the fix, in words --------------------------------------------------------------


def test_unknown_key_suggests_the_right_one() -> None:
    problems = problems_of(spec_with(training={"epoch": 3}, sampler={"nmae": "tpe"}))
    assert problems["training.epoch"].startswith("unknown field 'epoch'; did you mean 'epochs'?")
    assert "did you mean 'name'?" in problems["sampler.nmae"]


def test_misplaced_top_level_key_says_where_it_belongs() -> None:
    problems = problems_of(spec_with(epochs=3, n_trials=10, direction="maximize", objective=[]))
    assert problems["epochs"] == "unknown field 'epochs'; it belongs under training"
    assert problems["n_trials"] == "unknown field 'n_trials'; it belongs under budget"
    assert "objectives" in problems["direction"]
    assert "did you mean 'objectives'?" in problems["objective"]


def test_choice_errors_list_the_choices_and_a_suggestion() -> None:
    message = problems_of(spec_with(sampler={"name": "tpee"}))["sampler.name"]
    assert message == (
        "choose one of tpe, random, grid, gp, cmaes, nsga2, qmc, path, but got 'tpee'; "
        "did you mean 'tpe'?"
    )
    method = problems_of(spec_with(search_space={"method": "proxmal"}))["search_space.method"]
    assert "did you mean 'proximal'?" in method


def test_unknown_pruner_lists_the_pruners() -> None:
    message = problems_of(spec_with(pruner={"name": "medain"}))["pruner.name"]
    assert message == (
        "choose one of none, median, percentile, hyperband, successive_halving, but got "
        "'medain'; did you mean 'median'?"
    )


def test_optimizer_options_name_the_optimizers_that_take_them() -> None:
    problems = problems_of(spec_with(optimizer={"name": "adam", "momentum": 0.9}))
    assert problems["optimizer.momentum"] == (
        "momentum is for sgd and rmsprop; for adam set betas, e.g. [0.9, 0.999]"
    )
    problems = problems_of(spec_with(optimizer={"name": "rmsprop", "betas": [0.9, 0.99]}))
    assert problems["optimizer.betas"] == (
        "betas are for adam and adamw; remove them, or set momentum for rmsprop"
    )
    problems = problems_of(spec_with(optimizer={"name": "adam", "nesterov": True}))
    assert problems["optimizer.nesterov"] == (
        "nesterov is for sgd only; for adam set betas, e.g. [0.9, 0.999]"
    )


def test_nesterov_needs_momentum() -> None:
    problems = problems_of(spec_with(optimizer={"name": "sgd", "nesterov": True}))
    assert problems["optimizer.nesterov"] == (
        "Nesterov momentum needs momentum > 0; set momentum, e.g. 0.9"
    )


OPTION_VALUES: dict[str, Any] = {"momentum": 0.9, "betas": [0.9, 0.99], "nesterov": True}


@pytest.mark.parametrize(
    ("name", "option"),
    [(n, o) for n in OPTIMIZERS for o in OPTION_VALUES if o not in OPTIMIZERS[n].options],
)
def test_every_option_an_optimizer_does_not_take_is_refused(name: str, option: str) -> None:
    message = problems_of(spec_with(optimizer={"name": name, option: OPTION_VALUES[option]}))[
        f"optimizer.{option}"
    ]
    assert all(taker in message for taker in optimizers_taking(option))


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_takes_its_own_options(name: str) -> None:
    options = {o: OPTION_VALUES[o] for o in OPTIMIZERS[name].options}
    space = {"method": ["decoupled", "fused"]}  # weight_decay is no method for adamw (below)
    spec = parse_spec(spec_with(optimizer={"name": name, **options}, search_space=space))
    assert spec.optimizer.name == name


def test_adamw_is_refused_with_method_weight_decay() -> None:
    problems = problems_of(spec_with(optimizer={"name": "adamw"}))
    assert problems["optimizer.name"].startswith("method weight_decay is coupled decay")
    assert "use optimizer adam, or method decoupled" in problems["optimizer.name"]


def test_missing_field_message_gives_an_example() -> None:
    message = problems_of(spec_with(search_space={"l1": DROP}))["search_space.l1"]
    assert message.startswith("required; add it, e.g. l1: ")


def test_unknown_workload_lists_the_registered_ones() -> None:
    message = problems_of(spec_with(workload={"name": "digits_mpl"}))["workload.name"]
    assert "digits_mlp" in message
    assert "did you mean 'digits_mlp'?" in message


def test_unknown_metric_lists_what_the_workload_and_runner_report() -> None:
    objectives = [{"metric": "val_acc", "direction": "maximize"}]
    message = problems_of(spec_with(objectives=objectives))["objectives.0.metric"]
    for metric in (*get_workload("digits_mlp").metrics, *RUNNER_METRICS):
        assert metric in message
    assert "did you mean 'val_accuracy'?" in message


@pytest.mark.parametrize("metric", RUNNER_METRICS)
def test_runner_metrics_are_objectives_for_any_workload(metric: str) -> None:
    direction = "maximize" if metric.startswith("sparsity") else "minimize"
    objectives = [{"metric": "val_loss", "direction": "minimize"}]
    objectives.append({"metric": metric, "direction": direction})
    spec = parse_spec(spec_with(workload={"name": "sparse_regression"}, objectives=objectives))
    assert spec.directions == ["minimize", direction]


# Parameters a built-in workload cannot do without.
REQUIRED_PARAMS = {"tabular_file": {"path": "houses.csv", "task": "regression"}}


@pytest.mark.parametrize(
    ("workload", "metric"),
    [(name, metric) for name, cls in available_workloads().items() for metric in cls.metrics],
)
def test_every_workload_metric_is_an_objective(workload: str, metric: str) -> None:
    direction = "maximize" if metric in get_workload(workload).maximize else "minimize"
    data = spec_with(
        workload={"name": workload, "params": REQUIRED_PARAMS.get(workload, {})},
        objectives=[{"metric": metric, "direction": direction}],
    )
    spec = parse_spec(data)
    assert spec.directions == [direction]
    assert parse_spec(spec.to_json_dict()) == spec


def test_missing_workload_params_are_named() -> None:
    problems = problems_of(spec_with(workload={"name": "tabular_file"}))
    assert {"workload.params.path", "workload.params.task"} <= set(problems)


# ---- the conditional space: weight_decay cannot express λ₁ ----------------------------------

CONDITIONAL = [
    ("weight_decay", 1e-4, False),
    ("weight_decay", {"choices": [1e-5, 1e-4]}, False),
    ("weight_decay", {"low": 1e-6, "high": 1e-2, "log": True}, False),
    ("weight_decay", 0, True),
    ("weight_decay", {"choices": [0, 1e-4]}, True),
    ("weight_decay", {"low": 0, "high": 1e-2}, True),
    (["weight_decay", "proximal"], 1e-4, True),
    (["weight_decay", "loss"], {"choices": [1e-4]}, True),
    ("decoupled", 1e-4, True),
]


@pytest.mark.parametrize(("method", "l1", "accepted"), CONDITIONAL)
def test_methods_that_cannot_apply_l1_need_an_l1_that_can_be_zero(
    method: Any, l1: Any, accepted: bool
) -> None:
    data = spec_with(search_space={"method": method, "l1": l1})
    if accepted:
        parse_spec(data)
    else:
        message = problems_of(data)["search_space.l1"]
        assert "weight_decay cannot apply λ₁" in message
        assert "set l1: 0" in message


def test_weight_decay_trials_do_not_sample_l1() -> None:
    assert [m for m in METHODS if SearchSpace.samples_l1(m)] == list(L1_METHODS)
    assert not SearchSpace.samples_l1("weight_decay")


# ---- samplers and pruners -----------------------------------------------------------------------


def test_grid_refuses_every_range_and_names_the_values_to_list() -> None:
    data = spec_with(
        sampler={"name": "grid"},
        search_space={"l1": {"low": 0, "high": 1}, "lr": {"low": 1e-4, "high": 1e-1, "log": True}},
    )
    problems = problems_of(data)
    assert set(problems) == {"search_space.l1", "search_space.l2", "search_space.lr"}
    assert "{choices: [0, 0.25, 0.5, 0.75, 1]}" in problems["search_space.l1"]
    assert "{choices: [1e-06, 1e-05, 0.0001, 0.001, 0.01]}" in problems["search_space.l2"]
    assert "use another sampler" in problems["search_space.lr"]


def test_pruner_is_refused_with_two_objectives() -> None:
    data = spec_with(objectives=TWO_OBJECTIVES, pruner={"name": "median"})
    message = problems_of(data)["pruner.name"]
    assert "single-objective" in message
    assert "name: none" in message
    assert parse_spec(spec_with(objectives=TWO_OBJECTIVES, pruner={"name": "none"})).pruner


@pytest.mark.parametrize(
    ("n_trials", "accepted"), [(0, False), (1, True), (100_000, True), (100_001, False)]
)
def test_n_trials_bounds(n_trials: int, accepted: bool) -> None:
    data = spec_with(budget={"n_trials": n_trials})
    if accepted:
        assert parse_spec(data).budget.n_trials == n_trials
    else:
        assert "budget.n_trials" in problems_of(data)


# ---- deadlines ---------------------------------------------------------------------------------

DEADLINES = [
    ("2030-01-31T06:00:00Z", datetime(2030, 1, 31, 6, tzinfo=UTC)),
    ("2030-01-31T08:00:00+02:00", datetime(2030, 1, 31, 6, tzinfo=UTC)),
    ("2030-01-31 06:00:00.5+00:00", datetime(2030, 1, 31, 6, 0, 0, 500_000, tzinfo=UTC)),
]


@pytest.mark.parametrize(("text", "instant"), DEADLINES)
def test_deadline_is_parsed_with_its_offset(text: str, instant: datetime) -> None:
    deadline = parse_spec(spec_with(budget={"deadline": text})).budget.deadline
    assert deadline == instant
    assert deadline is not None
    assert deadline.utcoffset() is not None


def test_deadline_from_unquoted_yaml_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(MINIMAL) + "budget: {deadline: 2030-01-31T08:00:00+02:00}\n")
    deadline = load_spec(path).budget.deadline
    assert deadline is not None
    assert deadline.utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize("text", ["2030-01-31T06:00:00", "2030-01-31"])
def test_deadline_without_offset_is_refused_with_the_fix(text: str) -> None:
    message = problems_of(spec_with(budget={"deadline": text}))["budget.deadline"]
    assert "UTC offset" in message
    assert "Z" in message


# ---- files -------------------------------------------------------------------------------------


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nworkload: {name: digits_mlp\nsearch_space: []\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (problem,) = info.value.problems
    assert problem.field == ""
    assert str(path) in problem.message
    assert "not valid YAML (line" in problem.message


def test_json_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"name": "x",\n "workload": }')
    with pytest.raises(SpecError, match=r"not valid JSON \(line 2, column"):
        load_spec(path)


@pytest.mark.parametrize(
    ("name", "text", "kind"),
    [
        ("list.yaml", "- name: x\n", "a list"),
        ("text.yaml", "just words\n", "a str"),
        ("empty.yaml", "", "nothing"),
        ("array.json", "[1, 2]", "a list"),
    ],
)
def test_top_level_must_be_a_mapping(tmp_path: Path, name: str, text: str, kind: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert (
        f"must hold a mapping of fields (name, workload, search_space, ...), but it holds {kind}"
        in str(info.value)
    )


def test_parse_spec_refuses_non_mappings() -> None:
    with pytest.raises(SpecError, match="a sweep spec is a mapping of fields"):
        parse_spec(["name", "x"])


@pytest.mark.parametrize("make", [lambda p: p / "missing.yaml", lambda p: p])
def test_unreadable_file_is_a_spec_error(tmp_path: Path, make: Any) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_spec(make(tmp_path))


def test_non_utf8_file_is_a_spec_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec(path)


# ---- for the engine and the service ----------------------------------------------------------


def test_json_schema_is_pydantics_and_refuses_extra_keys() -> None:
    schema = SweepSpec.json_schema()
    assert schema == SweepSpec.model_json_schema()
    assert set(schema["properties"]) == set(SweepSpec.model_fields)
    assert schema["required"] == ["name", "workload", "search_space"]
    assert schema["additionalProperties"] is False
    space = schema["$defs"]["SearchSpace"]["properties"]
    assert {"type": "number"} in space["l1"]["anyOf"]
    json.dumps(schema)


def test_spec_is_immutable() -> None:
    spec = parse_spec(MINIMAL)
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]
