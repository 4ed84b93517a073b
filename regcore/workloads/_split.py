"""scikit-learn's ``train_test_split`` (shuffled, and stratified) and its digits, in numpy
alone: importing scikit-learn (with the scipy and pandas it loads) costs a process ~150 MiB,
and a worker training digits needs neither. The same random draws in the same order, so the
same rows (tests/regcore/workloads/test_split.py holds them equal to scikit-learn's).
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]


def sizes(
    n: int, *, test_size: float | int | None, train_size: float | int | None
) -> tuple[int, int]:
    """(n_train, n_test) as ``train_test_split`` counts them: a fraction of the rows (test
    rounded up, train down) or a count; the side not given is the rest."""
    for name, size in (("test_size", test_size), ("train_size", train_size)):
        whole = isinstance(size, int | np.integer)
        if size is not None and (not 0 < size < n if whole else not 0 < size < 1):
            raise ValueError(
                f"{name} must be a count in (0, {n}) or a fraction in (0, 1), but got {size!r}"
            )
    if test_size is None and train_size is None:
        test_size = 0.25
    n_test = n_train = None
    if test_size is not None:
        n_test = math.ceil(test_size * n) if isinstance(test_size, float) else int(test_size)
    if train_size is not None:
        n_train = math.floor(train_size * n) if isinstance(train_size, float) else int(train_size)
    if n_train is None:
        assert n_test is not None
        n_train = n - n_test
    if n_test is None:
        n_test = n - n_train
    if n_train + n_test > n or n_train == 0:
        raise ValueError(f"{n_train} training and {n_test} test rows do not fit in {n} rows")
    return n_train, n_test


def train_test_indices(
    n: int,
    *,
    test_size: float | int | None = None,
    train_size: float | int | None = None,
    seed: int,
    stratify: npt.NDArray[np.generic] | None = None,
) -> tuple[IntArray, IntArray]:
    """The train and test row indices ``train_test_split(np.arange(n), test_size=...,
    train_size=..., random_state=seed, shuffle=True, stratify=stratify)`` returns."""
    n_train, n_test = sizes(n, test_size=test_size, train_size=train_size)
    rng = np.random.RandomState(seed)
    if stratify is None:
        permutation = rng.permutation(n)
        return permutation[n_test : n_test + n_train], permutation[:n_test]
    classes, y_indices, class_counts = np.unique(stratify, return_inverse=True, return_counts=True)
    if class_counts.min() < 2 or n_train < len(classes) or n_test < len(classes):
        raise ValueError(
            f"a stratified split needs 2 rows of each class and each side at least one row of "
            f"each of the {len(classes)} classes, but got {class_counts.min()} rows of the "
            f"rarest, {n_train} training and {n_test} test rows"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[int] = []
    test: list[int] = []
    for i in range(len(classes)):
        rows = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.extend(rows[: n_i[i]])
        test.extend(rows[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(class_counts: IntArray, n_draws: int, rng: np.random.RandomState) -> IntArray:
    """The most likely counts per class of ``n_draws`` rows drawn without replacement, ties
    broken by ``rng`` (scikit-learn's ``_approximate_mode``)."""
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            floored[rng.choice(inds, size=add_now, replace=False)] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    counts: IntArray = floored.astype(np.int64)
    return counts


def sklearn_data_file(name: str) -> Path:
    """A data file that ships inside scikit-learn (``sklearn/datasets/data/NAME``), found
    without importing scikit-learn."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("scikit-learn is not installed; pip install scikit-learn")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / name


def load_digits_array() -> npt.NDArray[np.float64]:
    """``sklearn.datasets.load_digits``' rows: 64 pixels (0–16) and the digit, as floats."""
    with gzip.open(sklearn_data_file("digits.csv.gz"), mode="rt", encoding="utf-8") as file:
        return np.loadtxt(file, delimiter=",")
