"""The optimizer table: one row per optimizer, read by the spec, the training loop and the
proximal method alike."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
import torch
from torch import nn

from regcore.regularizers import (
    KNOWN_OPTIMIZERS,
    OPTIMIZERS,
    OptimizerKind,
    Regularizer,
    optimizers_taking,
    step_rule,
)
from regcore.spec import OptimizerSpec
from regcore.worker.optim import make_optimizer
from regcore.worker.training import TrainConfig

# What a spec or the loop's config may set, per option, to show it reaches the optimizer.
VALUES: dict[str, Any] = {"momentum": 0.5, "betas": (0.8, 0.99), "nesterov": True}


def groups() -> list[dict[str, Any]]:
    return Regularizer(nn.Linear(3, 2), l2=1e-3, method="fused").param_groups()


def test_spec_and_loop_offer_the_sweep_optimizers_in_table_order() -> None:
    assert list(OPTIMIZERS) == ["sgd", "adam", "adamw", "rmsprop"]
    assert list(OPTIMIZERS) == [k.name for k in KNOWN_OPTIMIZERS]
    schema = OptimizerSpec.model_json_schema()["properties"]["name"]
    assert schema["enum"] == list(OPTIMIZERS)


@pytest.mark.parametrize("kind", KNOWN_OPTIMIZERS, ids=lambda k: k.name)
def test_every_option_is_a_keyword_of_the_torch_class(kind: OptimizerKind) -> None:
    keywords = inspect.signature(kind.torch_class).parameters
    assert {"lr", *kind.options} <= set(keywords)


@pytest.mark.parametrize("kind", OPTIMIZERS.values(), ids=lambda k: k.name)
def test_every_option_is_a_spec_field_and_a_config_field(kind: OptimizerKind) -> None:
    for option in kind.options:
        assert option in OptimizerSpec.model_fields
        assert option in TrainConfig.__dataclass_fields__
        assert option in VALUES, f"give {option!r} a value to test with"


@pytest.mark.parametrize("kind", OPTIMIZERS.values(), ids=lambda k: k.name)
def test_training_loop_builds_each_row_with_its_options(kind: OptimizerKind) -> None:
    options = {o: VALUES[o] for o in kind.options}
    optimizer = make_optimizer(groups(), name=kind.name, lr=0.02, options=options)
    assert type(optimizer) is kind.torch_class
    for group in optimizer.param_groups:
        assert group["lr"] == 0.02
        for option, value in options.items():
            assert group[option] == value


def test_training_loop_refuses_an_unknown_optimizer_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown optimizer 'lamb'; choose sgd, adam, adamw or"):
        make_optimizer(groups(), name="lamb", lr=0.1, options={})


@pytest.mark.parametrize("kind", KNOWN_OPTIMIZERS, ids=lambda k: k.name)
def test_proximal_step_rule_is_the_rows(kind: OptimizerKind) -> None:
    build: Any = kind.torch_class
    assert step_rule(build(groups(), lr=0.1)) == kind.step_rule


def test_adamw_steps_like_adam() -> None:
    (adamw,) = [k for k in KNOWN_OPTIMIZERS if k.torch_class is torch.optim.AdamW]
    assert adamw.step_rule == "adam"


def test_optimizers_without_a_known_step_have_no_rule() -> None:
    assert step_rule(torch.optim.Adagrad(groups(), lr=0.1)) is None


def test_options_are_named_with_the_optimizers_that_take_them() -> None:
    assert optimizers_taking("momentum") == ["sgd", "rmsprop"]
    assert optimizers_taking("betas") == ["adam", "adamw"]
    assert optimizers_taking("nesterov") == ["sgd"]
