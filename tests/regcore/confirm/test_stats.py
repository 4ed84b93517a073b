"""The confirmation's tests: paired one-sided t-tests on per-seed gains, and Holm."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from regcore.confirm import holm, paired_differences, paired_p


def test_a_small_gain_on_every_seed_is_certain_paired_and_invisible_to_welch() -> None:
    # Seed-to-seed spread sd 0.1, a gain of 0.03 on every one of 4 seeds (the case).
    baseline = [0.50, 0.62, 0.41, 0.55]
    setting = [v - 0.03 for v in baseline]
    welch = stats.ttest_ind(setting, baseline, equal_var=False, alternative="less").pvalue
    gains = paired_differences(dict(enumerate(setting)), dict(enumerate(baseline)), maximize=False)
    assert welch > 0.3  # unpaired: "no difference"
    assert gains == pytest.approx([0.03] * 4)
    assert paired_p(gains) < 0.001


def test_paired_p_is_scipys_one_sided_paired_t_test() -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(0.5, 0.1, size=6)
    setting = reference - 0.02 + rng.normal(0, 0.02, size=6)
    gains = paired_differences(
        dict(enumerate(setting.tolist())), dict(enumerate(reference.tolist())), maximize=False
    )
    expected = stats.ttest_rel(setting, reference, alternative="less").pvalue
    assert paired_p(gains) == pytest.approx(expected)


def test_differences_pair_shared_seeds_only_and_follow_the_direction() -> None:
    setting, reference = {1: 0.9, 2: 0.8, 3: 0.7}, {2: 0.6, 3: 0.9, 4: 0.1}
    assert paired_differences(setting, reference, maximize=True) == pytest.approx([0.2, -0.2])
    assert paired_differences(setting, reference, maximize=False) == pytest.approx([-0.2, 0.2])


def test_no_spread_in_the_gains_is_certain_or_nothing() -> None:
    assert paired_p([0.01, 0.01, 0.01]) == 0.0
    assert paired_p([-0.01, -0.01]) == 1.0
    assert paired_p([0.0, 0.0]) == 1.0
    assert math.isnan(paired_p([0.5]))  # one pair: no test


def test_holm_multiplies_the_smallest_by_the_number_tested_and_stays_monotone() -> None:
    adjusted = holm([0.01, 0.04, 0.03])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.02]) == pytest.approx([0.02])  # one test: nothing to correct


def test_holm_leaves_untested_settings_out_of_the_count() -> None:
    adjusted = holm([0.02, math.nan, 0.5])
    assert adjusted[0] == pytest.approx(0.04)
    assert math.isnan(adjusted[1])
    assert adjusted[2] == pytest.approx(0.5)
