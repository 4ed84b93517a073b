"""The spec's loop settings: adamw, Nesterov momentum, per-pattern learning rates, schedules,
clipping, data-loading workers and which parameters are regularized. Each is kept as written
and round-trips; each misuse is refused naming its field and the fix; a training function
(its own loop) refuses them all; a study stored before they existed still resumes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import optuna
import pytest

import tests.plugins.functions  # noqa: F401  (registers the test_linear training function)
from regcore.spec import SpecError, SweepSpec, parse_spec
from regcore.store import create_storage
from regcore.sweeps.studies import SpecMismatchError, open_study

optuna.logging.set_verbosity(optuna.logging.WARNING)

MINIMAL: dict[str, Any] = {
    "name": "loop-settings",
    "workload": {"name": "digits_mlp", "params": {"hidden": [16]}},
    "search_space": {"l1": 0, "l2": {"low": 1.0e-6, "high": 1.0e-2, "log": True}},
}
# adamw is refused with method weight_decay (the default list holds it).
NO_WEIGHT_DECAY = {"l1": 0, "l2": 1e-4, "method": ["decoupled", "fused"]}


def spec_with(**sections: Any) -> dict[str, Any]:
    return {**MINIMAL, **sections}


def problems_of(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return {p.field: p.message for p in info.value.problems}


def round_trips(spec: SweepSpec) -> None:
    assert parse_spec(spec.to_json_dict()) == spec
    assert parse_spec(json.loads(json.dumps(spec.to_json_dict()))) == spec


# ---- accepted, kept as written and round-tripped --------------------------------------------

ACCEPTED: dict[str, tuple[dict[str, Any], str, Any]] = {
    # change, the section of to_json_dict() to look at, what must be in it
    "adamw": (
        {"optimizer": {"name": "adamw", "betas": [0.9, 0.95]}, "search_space": NO_WEIGHT_DECAY},
        "optimizer",
        {"name": "adamw", "betas": [0.9, 0.95]},
    ),
    "sgd nesterov": (
        {"optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True}},
        "optimizer",
        {"name": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True},
    ),
    "sgd nesterov off": (
        {"optimizer": {"name": "sgd", "nesterov": False}},
        "optimizer",
        {"nesterov": False, "momentum": None},
    ),
    "lr_mult": (
        {"optimizer": {"lr_mult": {"0.*": 0.1, "*.bias": 2.0}}},
        "optimizer",
        {"lr_mult": {"0.*": 0.1, "*.bias": 2.0}},
    ),
    "cosine": (
        {"training": {"scheduler": {"name": "cosine", "warmup_epochs": 1, "min_lr_ratio": 0.1}}},
        "training",
        {"scheduler": {"name": "cosine", "warmup_epochs": 1.0, "min_lr_ratio": 0.1}},
    ),
    "fractional warmup": (
        {"training": {"epochs": 3, "scheduler": {"name": "none", "warmup_epochs": 2.5}}},
        "training",
        {"scheduler": {"name": "none", "warmup_epochs": 2.5}},
    ),
    "step": (
        {"training": {"scheduler": {"name": "step", "step_epochs": 3, "gamma": 0.5}}},
        "training",
        {"scheduler": {"name": "step", "step_epochs": 3, "gamma": 0.5}},
    ),
    "onecycle": (
        {"training": {"scheduler": {"name": "onecycle", "warmup_epochs": 2}}},
        "training",
        {"scheduler": {"name": "onecycle", "warmup_epochs": 2.0}},
    ),
    "plateau": (
        {"training": {"scheduler": {"name": "plateau", "patience": 0, "gamma": 0.2}}},
        "training",
        {"scheduler": {"name": "plateau", "patience": 0, "gamma": 0.2}},
    ),
    "clip_grad_norm": (
        {"training": {"clip_grad_norm": 1.0}},
        "training",
        {"clip_grad_norm": 1.0},
    ),
    "num_workers": ({"training": {"num_workers": 2}}, "training", {"num_workers": 2}),
    "regularize exclude": (
        {"regularize": {"exclude": ["*.bias", "0.*"]}},
        "regularize",
        {"exclude": ["*.bias", "0.*"], "only": None},
    ),
    "regularize only": (
        {"regularize": {"only": ["2.*"]}},
        "regularize",
        {"exclude": None, "only": ["2.*"]},
    ),
    "regularize exclude nothing": (
        {"regularize": {"exclude": [], "only": ["0.*"]}},
        "regularize",
        {"exclude": [], "only": ["0.*"]},
    ),
}


def contains(whole: Any, part: Any) -> bool:
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            k in whole and contains(whole[k], v) for k, v in part.items()
        )
    return bool(whole == part)


@pytest.mark.parametrize(("change", "section", "kept"), ACCEPTED.values(), ids=ACCEPTED)
def test_each_loop_setting_is_accepted_kept_and_round_tripped(
    change: dict[str, Any], section: str, kept: Any
) -> None:
    spec = parse_spec(spec_with(**change))
    assert contains(spec.to_json_dict()[section], kept), spec.to_json_dict()[section]
    round_trips(spec)


def test_the_loop_settings_default_to_the_loop_as_it_was() -> None:
    data = parse_spec(MINIMAL).to_json_dict()
    assert (data["optimizer"]["nesterov"], data["optimizer"]["lr_mult"]) == (None, {})
    assert data["training"]["scheduler"] == {
        "name": "none",
        "warmup_epochs": 0.0,
        "min_lr_ratio": None,
        "step_epochs": None,
        "gamma": None,
        "patience": None,
    }
    assert (data["training"]["clip_grad_norm"], data["training"]["num_workers"]) == (None, 0)
    assert data["regularize"] == {"exclude": None, "only": None}


def test_the_regularize_section_gives_the_regularizers_keywords() -> None:
    spec = parse_spec(spec_with(regularize={"exclude": ["*.bias"], "only": ["0.*"]}))
    assert spec.regularize.options == {"exclude": ["*.bias"], "only": ["0.*"]}


# ---- refused, naming the field and the fix --------------------------------------------------

REFUSED: dict[str, tuple[dict[str, Any], str, list[str]]] = {
    # change, the field at fault, words of the message
    "adamw with weight_decay": (
        {
            "optimizer": {"name": "adamw"},
            "search_space": {**NO_WEIGHT_DECAY, "method": ["weight_decay", "fused"]},
        },
        "optimizer.name",
        ["method weight_decay", "AdamW decays decoupled", "use optimizer adam", "decoupled"],
    ),
    "nesterov without momentum": (
        {"optimizer": {"name": "sgd", "nesterov": True}},
        "optimizer.nesterov",
        ["Nesterov momentum needs momentum > 0", "set momentum, e.g. 0.9"],
    ),
    "nesterov with zero momentum": (
        {"optimizer": {"name": "sgd", "nesterov": True, "momentum": 0.0}},
        "optimizer.nesterov",
        ["momentum > 0"],
    ),
    "nesterov for adam": (
        {"optimizer": {"name": "adam", "nesterov": True}},
        "optimizer.nesterov",
        ["nesterov is for sgd only", "for adam set betas"],
    ),
    "zero lr_mult": (
        {"optimizer": {"lr_mult": {"0.*": 0}}},
        "optimizer.lr_mult.0.*",
        ["must be > 0"],
    ),
    "infinite lr_mult": (
        {"optimizer": {"lr_mult": {"0.*": float("inf")}}},
        "optimizer.lr_mult.0.*",
        ["finite"],
    ),
    "lr_mult as a list": (
        {"optimizer": {"lr_mult": ["0.*"]}},
        "optimizer.lr_mult",
        ["must be a mapping"],
    ),
    "unknown schedule": (
        {"training": {"scheduler": {"name": "cosin"}}},
        "training.scheduler.name",
        ["choose one of none, cosine, step, onecycle, plateau", "did you mean 'cosine'"],
    ),
    "gamma for cosine": (
        {"training": {"scheduler": {"name": "cosine", "gamma": 0.5}}},
        "training.scheduler.gamma",
        ["gamma is for the step and plateau schedule", "remove it"],
    ),
    "min_lr_ratio for step": (
        {"training": {"scheduler": {"name": "step", "step_epochs": 2, "min_lr_ratio": 0.1}}},
        "training.scheduler.min_lr_ratio",
        ["min_lr_ratio is for the cosine schedule", "remove it"],
    ),
    "patience for none": (
        {"training": {"scheduler": {"patience": 3}}},
        "training.scheduler.patience",
        ["patience is for the plateau schedule", "remove it"],
    ),
    "step_epochs for onecycle": (
        {"training": {"scheduler": {"name": "onecycle", "step_epochs": 3}}},
        "training.scheduler.step_epochs",
        ["step_epochs is for the step schedule", "remove it"],
    ),
    "step without step_epochs": (
        {"training": {"scheduler": {"name": "step"}}},
        "training.scheduler.step_epochs",
        ["the step schedule needs step_epochs", "{name: step, step_epochs: 10}"],
    ),
    "min_lr_ratio of 1": (
        {"training": {"scheduler": {"name": "cosine", "min_lr_ratio": 1}}},
        "training.scheduler.min_lr_ratio",
        ["must be < 1"],
    ),
    "gamma of 1": (
        {"training": {"scheduler": {"name": "plateau", "gamma": 1.0}}},
        "training.scheduler.gamma",
        ["must be < 1"],
    ),
    "negative warmup": (
        {"training": {"scheduler": {"warmup_epochs": -1}}},
        "training.scheduler.warmup_epochs",
        ["must be ≥ 0"],
    ),
    "warmup as long as training": (
        {"training": {"epochs": 3, "scheduler": {"name": "cosine", "warmup_epochs": 3}}},
        "training.scheduler.warmup_epochs",
        ["warmup must end before training does", "warmup_epochs < epochs (3)", "got 3"],
    ),
    "unknown schedule option": (
        {"training": {"scheduler": {"name": "cosine", "warmup": 1}}},
        "training.scheduler.warmup",
        ["unknown field 'warmup'", "did you mean 'warmup_epochs'"],
    ),
    "zero clip_grad_norm": (
        {"training": {"clip_grad_norm": 0}},
        "training.clip_grad_norm",
        ["must be > 0"],
    ),
    "negative num_workers": (
        {"training": {"num_workers": -1}},
        "training.num_workers",
        ["must be ≥ 0"],
    ),
    "too many num_workers": (
        {"training": {"num_workers": 65}},
        "training.num_workers",
        ["must be ≤ 64"],
    ),
    "empty only": (
        {"regularize": {"only": []}},
        "regularize.only",
        ["at least 1 item"],
    ),
    "empty pattern": (
        {"regularize": {"exclude": [""]}},
        "regularize.exclude.0",
        ["at least 1 character"],
    ),
    "exclude as a string": (
        {"regularize": {"exclude": "*.bias"}},
        "regularize.exclude",
        ["must be a list"],
    ),
    "misspelt regularize key": (
        {"regularize": {"exlude": ["*.bias"]}},
        "regularize.exlude",
        ["unknown field 'exlude'", "did you mean 'exclude'"],
    ),
}


@pytest.mark.parametrize(("change", "field", "words"), REFUSED.values(), ids=REFUSED)
def test_each_misuse_is_refused_naming_the_field_and_the_fix(
    change: dict[str, Any], field: str, words: list[str]
) -> None:
    problems = problems_of(spec_with(**change))
    assert field in problems, problems
    for word in words:
        assert word in problems[field], problems[field]


@pytest.mark.parametrize(
    ("key", "home"),
    [
        ("scheduler", "training"),
        ("clip_grad_norm", "training"),
        ("num_workers", "training"),
        ("lr_mult", "optimizer"),
        ("nesterov", "optimizer"),
    ],
)
def test_a_loop_setting_at_the_top_level_is_sent_to_its_section(key: str, home: str) -> None:
    problems = problems_of(spec_with(**{key: 1}))
    assert problems[key] == f"unknown field {key!r}; it belongs under {home}"


def test_regularize_keys_under_training_are_refused() -> None:
    problems = problems_of(spec_with(training={"exclude": ["*.bias"]}))
    assert "training.exclude" in problems
    assert "unknown field 'exclude'" in problems["training.exclude"]


# ---- a training function runs its own loop --------------------------------------------------

FUNCTION = {
    "name": "own-loop",
    "workload": {"name": "test_linear"},
    "search_space": {"l1": 0, "l2": {"low": 1.0e-6, "high": 1.0e-2, "log": True}},
}

LOOP_SETTINGS: dict[str, tuple[str, Any]] = {
    "optimizer.name": ("optimizer", {"name": "sgd"}),
    "optimizer.momentum": ("optimizer", {"name": "rmsprop", "momentum": 0.9}),
    "optimizer.nesterov": ("optimizer", {"name": "sgd", "momentum": 0.9, "nesterov": True}),
    "optimizer.betas": ("optimizer", {"betas": [0.9, 0.99]}),
    "optimizer.lr_mult": ("optimizer", {"lr_mult": {"0.*": 0.1}}),
    "training.batch_size": ("training", {"batch_size": 32}),
    "training.precision": ("training", {"precision": "bf16"}),
    "training.clip_grad_norm": ("training", {"clip_grad_norm": 1.0}),
    "training.num_workers": ("training", {"num_workers": 2}),
    "training.scheduler": ("training", {"scheduler": {"name": "cosine"}}),
}


@pytest.mark.parametrize(("field", "setting"), LOOP_SETTINGS.items(), ids=LOOP_SETTINGS)
def test_a_training_function_refuses_each_loop_setting(
    field: str, setting: tuple[str, Any]
) -> None:
    section, value = setting
    problems = problems_of({**FUNCTION, section: value})
    assert field in problems, problems
    message = problems[field]
    assert message.startswith("a training function runs its own loop: ")
    assert f"set {field} in it" in message
    assert "only optimizer.lr reaches it, as ctx.lr" in message
    assert message.endswith("remove it here")


def test_a_training_function_refuses_every_loop_setting_at_once() -> None:
    data = {
        **FUNCTION,
        "optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True, "lr_mult": {"a": 2}},
        "training": {
            "batch_size": 3,
            "precision": "bf16",
            "clip_grad_norm": 1.0,
            "num_workers": 2,
            "scheduler": {"name": "step", "step_epochs": 1},
        },
    }
    expected = set(LOOP_SETTINGS) - {"optimizer.betas"}
    assert set(problems_of(data)) == expected


def test_a_training_function_takes_the_settings_that_reach_it() -> None:
    """optimizer.lr (ctx.lr), training.epochs, seed and device, and the regularize section
    (ctx.regularizer's defaults); a loop setting written at its default is no setting."""
    spec = parse_spec(
        {
            **FUNCTION,
            "optimizer": {"name": "adam", "lr": 0.05, "lr_mult": {}},
            "training": {
                "epochs": 3,
                "seed": 4,
                "device": "cpu",
                "batch_size": 128,
                "scheduler": {"name": "none"},
            },
            "regularize": {"exclude": ["*.bias"]},
        }
    )
    assert (spec.optimizer.lr, spec.training.epochs, spec.training.seed) == (0.05, 3, 4)
    assert spec.regularize.exclude == ["*.bias"]
    round_trips(spec)


def test_a_declarative_workload_takes_the_loop_settings_a_function_refuses() -> None:
    data = {
        **MINIMAL,
        "optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True, "lr_mult": {"0.*": 2}},
        "training": {
            "batch_size": 3,
            "precision": "bf16",
            "clip_grad_norm": 1.0,
            "num_workers": 2,
            "scheduler": {"name": "step", "step_epochs": 1},
        },
    }
    round_trips(parse_spec(data))


# ---- a study stored by an earlier version resumes -------------------------------------------

# A spec's sections as regsweep stored them before the loop settings (and search_space.params).
EARLIER = {
    "optimizer": {"name": "adam", "lr": 0.001, "momentum": None, "betas": None},
    "training": {"epochs": 10, "batch_size": 128, "seed": 0, "device": "auto", "precision": "fp32"},
}


def earlier_version_of(spec: SweepSpec) -> dict[str, Any]:
    stored = spec.to_json_dict()
    stored.pop("regularize")
    stored["search_space"].pop("params")
    for section, fields in EARLIER.items():
        stored[section] = {key: stored[section][key] for key in fields}
    return stored


def stored_as_by_an_earlier_version(spec: SweepSpec) -> optuna.storages.BaseStorage:
    storage = optuna.storages.InMemoryStorage()
    study = open_study(spec, storage)
    study.set_user_attr("spec", earlier_version_of(spec))
    return storage


def test_a_spec_stored_by_an_earlier_version_still_resumes() -> None:
    spec = parse_spec({**MINIMAL, "sampler": {"name": "tpe"}})  # a search that queues a baseline
    stored = earlier_version_of(spec)
    assert "regularize" not in stored
    assert "scheduler" not in stored["training"]
    storage = stored_as_by_an_earlier_version(spec)
    study = open_study(spec, storage)
    assert study.study_name == spec.name
    assert len(study.trials) == 1  # the baseline queued when it was created, not again


def test_a_spec_stored_by_an_earlier_version_still_resumes_in_sqlite(tmp_path: Path) -> None:
    spec = parse_spec(MINIMAL)
    url = f"sqlite:///{tmp_path / 'resume.db'}"
    study = open_study(spec, create_storage(url))
    study.set_user_attr("spec", earlier_version_of(spec))
    resumed = open_study(spec, create_storage(url))
    assert resumed.user_attrs["spec"] == earlier_version_of(spec)


@pytest.mark.parametrize(
    ("change", "section"),
    [
        ({"training": {"scheduler": {"name": "cosine"}}}, "training"),
        ({"training": {"clip_grad_norm": 1.0}}, "training"),
        ({"optimizer": {"name": "sgd", "momentum": 0.9, "nesterov": True}}, "optimizer"),
        ({"regularize": {"only": ["0.*"]}}, "regularize"),
        (
            {"search_space": {**MINIMAL["search_space"], "params": {"dropout": 0.1}}},
            "search_space",
        ),
    ],
)
def test_a_new_setting_that_the_earlier_study_did_not_have_is_a_different_spec(
    change: dict[str, Any], section: str
) -> None:
    """The stored spec is read with today's defaults: a study made without a schedule is not
    resumed by a spec that asks for one."""
    storage = stored_as_by_an_earlier_version(parse_spec(MINIMAL))
    with pytest.raises(SpecMismatchError, match=f"different {section}"):
        open_study(parse_spec(spec_with(**change)), storage)


def test_execution_population_takes_a_size_or_auto() -> None:
    base = {
        "name": "p",
        "workload": {"name": "digits_mlp"},
        "search_space": {"l1": 0.0, "l2": 1e-3},
    }
    assert parse_spec(base).execution.population == 1
    assert parse_spec({**base, "execution": {"population": 16}}).execution.population == 16
    assert parse_spec({**base, "execution": {"population": "auto"}}).execution.population == "auto"
    for bad in (0, 257, "many"):
        with pytest.raises(SpecError) as info:
            parse_spec({**base, "execution": {"population": bad}})
        assert {p.field for p in info.value.problems} == {"execution.population"}


def test_a_population_refuses_the_onecycle_schedule() -> None:
    data = {
        "name": "p",
        "workload": {"name": "digits_mlp"},
        "search_space": {"l1": 0.0, "l2": 1e-3},
        "training": {"scheduler": {"name": "onecycle"}},
        "execution": {"population": 4},
    }
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    problems = {p.field: p.message for p in info.value.problems}
    assert "not onecycle" in problems["training.scheduler.name"]


def test_an_endless_number_of_epochs_is_refused() -> None:
    # Each epoch is a pruner step and a stored intermediate value: 10**12 would never end.
    with pytest.raises(SpecError, match="must be ≤ 10000, but got 1000000000000"):
        parse_spec(spec_with(training={"epochs": 10**12}))
