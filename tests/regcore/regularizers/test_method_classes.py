"""The method classes are the maths: methods of one class train the same parameters (1e-10,
float64, 50 steps), methods of different classes do not, under every optimizer a sweep can
name. A sweep samples the class and trusts this to run only the cheapest of its methods."""

from __future__ import annotations

import itertools
from functools import partial

import pytest
import torch

from regcore.regularizers import (
    CLASSES,
    METHODS,
    OPTIMIZERS,
    cheapest,
    group_by_class,
    method_class,
)
from tests.regcore.regularizers.helpers import max_abs_diff, train

# Every optimizer of the sweep's table, with and without the option that changes the class.
SETTINGS = {
    "sgd": (torch.optim.SGD, {"lr": 0.05}),
    "sgd-momentum": (torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "adam": (torch.optim.Adam, {"lr": 1e-2}),
    "adamw": (torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.0}),
    "rmsprop": (torch.optim.RMSprop, {"lr": 1e-3}),
}


def _name_and_momentum(setting: str) -> tuple[str, float | None]:
    name = setting.split("-")[0]
    return name, 0.9 if setting.endswith("momentum") else None


def _usable(method: str, setting: str) -> bool:
    # weight_decay means coupled decay; AdamW's is decoupled, and the spec refuses the pair.
    return not (method == "weight_decay" and setting == "adamw")


def test_every_optimizer_of_the_table_is_covered() -> None:
    assert {_name_and_momentum(s)[0] for s in SETTINGS} == set(OPTIMIZERS)


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_methods_of_one_class_train_the_same_model(setting: str, device: torch.device) -> None:
    cls, options = SETTINGS[setting]
    optimizer = partial(cls, **options)
    name, momentum = _name_and_momentum(setting)
    methods = [m for m in METHODS if _usable(m, setting)]
    # weight_decay applies λ₂ only: every method trains once with λ₁ and once without.
    trained = {
        (m, l1): train(m, optimizer, l1=l1, device=device)
        for m in methods
        for l1 in (0.0, 1e-2)
        if l1 == 0.0 or m != "weight_decay"
    }
    checked = 0
    for a, b in itertools.combinations(methods, 2):
        same = method_class(a, optimizer=name, momentum=momentum) == method_class(
            b, optimizer=name, momentum=momentum
        )
        l1 = 0.0 if "weight_decay" in (a, b) else 1e-2
        diff = max_abs_diff(trained[a, l1], trained[b, l1])
        if same:
            assert diff <= 1e-10, f"{a} and {b} are one class under {setting}, differ by {diff}"
        else:
            assert diff > 1e-6, f"{a} and {b} are different classes under {setting}: {diff}"
        checked += same
    assert checked >= 3  # loss, hook, fused at least


def test_plain_sgd_puts_decoupled_into_the_penalty_class() -> None:
    assert method_class("decoupled", optimizer="sgd") == "penalty"
    assert method_class("decoupled", optimizer="sgd", momentum=0.9) == "decoupled"
    assert method_class("decoupled", optimizer="adam") == "decoupled"


def test_group_by_class_keeps_the_class_order_and_the_listed_order() -> None:
    grouped = group_by_class(["proximal", "fused", "decoupled", "loss"], optimizer="adam")
    assert grouped == {
        "penalty": ("fused", "loss"),
        "decoupled": ("decoupled",),
        "proximal": ("proximal",),
    }
    assert tuple(grouped) == CLASSES


def test_cheapest_follows_the_probe_and_skips_methods_that_cannot_apply_l1() -> None:
    costs = {"loss": 1.0, "hook": 2.0, "fused": 3.0, "weight_decay": 0.5}
    assert (
        cheapest(["hook", "fused", "loss", "weight_decay"], l1=0.0, costs=costs) == "weight_decay"
    )
    assert cheapest(["hook", "fused", "loss", "weight_decay"], l1=1e-4, costs=costs) == "loss"


def test_cheapest_without_a_full_probe_uses_the_measured_order() -> None:
    assert cheapest(["loss", "fused", "hook"], l1=1e-4) == "hook"
    assert cheapest(["loss", "fused", "hook"], l1=1e-4, costs={"loss": 0.1}) == "hook"


def test_cheapest_refuses_a_class_that_cannot_apply_l1() -> None:
    with pytest.raises(ValueError, match="can apply λ₁"):
        cheapest(["weight_decay"], l1=1e-4)
