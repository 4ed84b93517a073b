"""regcore.workloads._split gives the rows scikit-learn gives (the splits and the digits
every built-in workload trained on before it stopped importing scikit-learn)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from regcore.workloads._split import load_digits_array, sizes, train_test_indices

CASES = [
    # (n, test_size, train_size, classes or None)
    (100, 0.25, None, None),
    (1797, 450, None, None),
    (37, None, 10, None),
    (569, 0.25, None, 2),
    (1797, 450, None, 10),
    (1347, None, 150, 10),
    (200, 0.3, None, 7),
    (61, 13, 40, 3),
    (400, 0.1, 0.5, 4),
]


@pytest.mark.parametrize(("n", "test_size", "train_size", "classes"), CASES)
@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
def test_the_split_is_scikit_learns(
    n: int,
    test_size: float | int | None,
    train_size: float | int | None,
    classes: int | None,
    seed: int,
) -> None:
    rows = np.arange(n, dtype=np.int64)
    labels = None
    if classes is not None:  # uneven classes, so the tie-breaks of _approximate_mode happen
        labels = np.random.RandomState(seed + 1).choice(classes, size=n, p=_weights(classes))
    theirs = train_test_split(
        rows, test_size=test_size, train_size=train_size, random_state=seed, stratify=labels
    )
    ours = train_test_indices(
        n, test_size=test_size, train_size=train_size, seed=seed, stratify=labels
    )
    assert [list(a) for a in ours] == [list(a) for a in theirs]


def _weights(classes: int) -> list[float]:
    raw = np.arange(1, classes + 1, dtype=np.float64)
    return list(raw / raw.sum())


def test_the_digits_are_scikit_learns() -> None:
    bunch = load_digits()
    rows = load_digits_array()
    assert np.array_equal(rows[:, :-1], bunch.data)
    assert np.array_equal(rows[:, -1].astype(np.int64), bunch.target)


@pytest.mark.parametrize(
    ("test_size", "train_size", "fix"),
    [(0.0, None, "test_size"), (100, None, "test_size"), (None, 1.5, "train_size")],
)
def test_sizes_that_do_not_fit_are_refused(
    test_size: float | int | None, train_size: float | int | None, fix: str
) -> None:
    with pytest.raises(ValueError, match=fix):
        sizes(100, test_size=test_size, train_size=train_size)


def test_digits_workloads_load_without_scikit_learn() -> None:
    code = (
        "import sys\n"
        "from regcore.workloads import build_workload\n"
        "build_workload('digits_mlp', {'train_size': 150}).load_data(seed=0)\n"
        "build_workload('sparse_regression', {}).load_data(seed=0)\n"
        "loaded = [m for m in ('sklearn', 'scipy', 'pandas') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
