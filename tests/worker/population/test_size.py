"""``execution.population: auto``: K from the steps measured on the sweep's own model, never
a population that steps slower than one trial at a time."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from regcore.worker.population._size import MARGIN, MOST, choose_size, pick
from tests.worker.specs import population_spec


def steps(seconds: dict[int, float]) -> tuple[list[int], Callable[[int], float]]:
    asked: list[int] = []

    def step_s(k: int) -> float:
        asked.append(k)
        return seconds[k]

    return asked, step_s


def test_the_k_with_the_most_member_steps_per_second_is_taken() -> None:
    # K members step in about the time of one up to 8, then the cost grows with K.
    asked, step_s = steps({1: 1.0, 2: 1.0, 4: 1.1, 8: 1.3, 16: 3.0, 32: 8.0, 64: 20.0})
    size, rates = pick(step_s, most=MOST)
    assert size == 8
    assert rates[8] == pytest.approx(8 / 1.3)
    assert asked == [1, 2, 4, 8, 16]  # 16 was no faster than 8: no further doubling


def test_a_population_slower_than_one_trial_at_k_2_is_still_tried_larger() -> None:
    # A tiny model: the population step's fixed cost makes K = 2 slower than one trial,
    # and K = 8 three times faster (sparse_regression on 2 CPU cores).
    asked, step_s = steps({1: 0.21, 2: 0.50, 4: 0.52, 8: 0.58, 16: 1.10, 32: 2.2})
    size, rates = pick(step_s, most=MOST)
    assert size == 16
    assert rates[16] / rates[1] == pytest.approx(16 * 0.21 / 1.10)
    assert asked == [1, 2, 4, 8, 16]  # 16 raised the rate by under GROWTH: the knee


def test_a_model_that_fills_the_device_alone_trains_one_trial_at_a_time() -> None:
    # The digits MLP on two CPU cores: K members cost K times one, and vmap's overhead.
    asked, step_s = steps({1: 1.0, 2: 2.3, 4: 4.8})
    assert pick(step_s, most=MOST)[0] == 1
    assert asked == [1, 2, 4]  # doubling to 4 did not raise the population's rate


def test_a_population_barely_faster_than_one_trial_is_not_taken() -> None:
    _, step_s = steps({1: 1.0, 2: 2 / (MARGIN - 0.05), 4: 4.0})
    assert pick(step_s, most=MOST)[0] == 1


def test_k_stops_at_most() -> None:
    asked, step_s = steps({1: 1.0, 2: 1.0, 4: 1.0, 8: 1.0})
    assert pick(step_s, most=4)[0] == 4
    assert asked == [1, 2, 4]


def test_auto_measures_the_sweeps_own_model(caplog: pytest.LogCaptureFixture) -> None:
    spec = population_spec(execution={"population": "auto"})
    with caplog.at_level(logging.INFO, logger="regcore.worker.population._size"):
        size = choose_size(spec, device="cpu")
    assert 1 <= size <= MOST
    logged = [r.getMessage() for r in caplog.records]
    said = f"population auto on cpu: K = {size} (member-steps/s: K=1 "
    assert any(m.startswith(said) for m in logged)
