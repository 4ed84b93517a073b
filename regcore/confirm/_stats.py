"""The tests a confirmation decides with: a paired one-sided t-test on per-seed differences,
and Holm's correction when several candidates are tested at once.

Every setting of a confirmation trains on the same seeds (the same initialization, data
order and, where the workload allows, data split per seed), so the values of two settings
come in pairs. Seed-to-seed spread is shared by both members of a pair and cancels in their
difference: a gain of 0.03 on every seed with a seed-to-seed spread of 0.1 is certain by a
paired test and invisible to an unpaired one (Welch, p ≈ 0.36 with 4 seeds).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

#: The significance level of every test of a confirmation (after Holm's correction).
ALPHA = 0.05


def paired_differences(
    setting: Mapping[int, float], reference: Mapping[int, float], *, maximize: bool
) -> list[float]:
    """Per shared seed, how much better ``setting`` did than ``reference`` (positive: better),
    in seed order."""
    sign = 1.0 if maximize else -1.0
    return [sign * (setting[s] - reference[s]) for s in sorted(setting.keys() & reference.keys())]


def paired_p(gains: Sequence[float]) -> float:
    """One-sided paired t-test: the p-value of the mean of ``gains`` (per-seed improvements,
    :func:`paired_differences`) being above 0 by chance; NaN with fewer than 2 pairs."""
    n = len(gains)
    if n < 2:
        return math.nan
    mean, sd = statistics.fmean(gains), statistics.stdev(gains)
    if sd == 0:
        # The same difference on every seed (a deterministic workload): certain, or none.
        return 0.0 if mean > 0 else 1.0
    from scipy import stats  # scikit-learn's dependency, loaded only when a test is asked for

    t = mean / (sd / math.sqrt(n))
    return float(stats.t.sf(t, df=n - 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``p_values`` (NaN: not tested, left out of the count):
    reject where the adjusted value is below :data:`ALPHA`, and the chance of any false
    "better" among them stays at most ALPHA."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(tested)
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted
