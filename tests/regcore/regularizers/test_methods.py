"""The method table is the one place a method is described: every list and rule the rest of
regsweep reads (METHODS, L1_METHODS, classes, cost order) is derived from its rows."""

from __future__ import annotations

import pytest
from torch import nn

from regcore.regularizers import (
    CLASSES,
    L1_METHODS,
    METHOD_TABLE,
    METHODS,
    Regularizer,
    cheapest,
    group_by_class,
    method_class,
    method_spec,
)


def test_methods_are_the_table_rows_in_the_designs_order() -> None:
    assert METHODS == ("weight_decay", "decoupled", "loss", "hook", "fused", "proximal")
    assert tuple(row.name for row in METHOD_TABLE) == METHODS


def test_each_row_names_the_implementation_of_that_method() -> None:
    for row in METHOD_TABLE:
        assert row.implementation.name == row.name


def test_l1_methods_are_the_rows_that_support_l1() -> None:
    assert set(L1_METHODS) == {row.name for row in METHOD_TABLE if row.supports_l1}
    assert "weight_decay" not in L1_METHODS


@pytest.mark.parametrize("name", METHODS)
def test_the_regularizer_refuses_l1_exactly_where_the_table_says(name: str) -> None:
    model = nn.Linear(3, 2)
    if method_spec(name).supports_l1:
        assert Regularizer(model, l1=1e-3, method=name).l1 == 1e-3
    else:
        with pytest.raises(ValueError, match="cannot express an L1 penalty"):
            Regularizer(model, l1=1e-3, method=name)


def test_cost_ranks_order_every_method_once() -> None:
    assert sorted(row.cost_rank for row in METHOD_TABLE) == list(range(len(METHOD_TABLE)))
    by_cost = sorted(METHOD_TABLE, key=lambda row: row.cost_rank)
    assert [row.name for row in by_cost] == [
        "weight_decay",
        "hook",
        "fused",
        "loss",
        "decoupled",
        "proximal",
    ]
    assert cheapest(METHODS, l1=0.0) == by_cost[0].name
    assert cheapest(METHODS, l1=1e-4) == next(r.name for r in by_cost if r.supports_l1)


def test_every_class_is_a_known_class_and_has_a_method() -> None:
    assert {row.method_class for row in METHOD_TABLE} == set(CLASSES)
    for row in METHOD_TABLE:
        assert row.plain_sgd_class in (None, *CLASSES)
    assert list(group_by_class(METHODS)) == list(CLASSES)


def test_plain_sgd_class_applies_only_without_momentum() -> None:
    for row in METHOD_TABLE:
        plain = row.plain_sgd_class or row.method_class
        assert method_class(row.name, optimizer="sgd") == plain
        assert method_class(row.name, optimizer="sgd", momentum=0.9) == row.method_class
        assert method_class(row.name, optimizer="adam") == row.method_class


def test_an_unknown_method_is_refused_with_the_choices() -> None:
    for call in (
        lambda: method_spec("lasso"),
        lambda: method_class("lasso"),
        lambda: cheapest(["lasso"], l1=0.0),
        lambda: Regularizer(nn.Linear(2, 2), method="lasso"),
    ):
        with pytest.raises(ValueError, match=r"unknown method 'lasso'; choose one of weight_decay"):
            call()
