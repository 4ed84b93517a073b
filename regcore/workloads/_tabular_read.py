"""Reading the tabular_file workload's file into features and a target: CSV and Parquet
through pandas (the ``tabular`` extra), NPZ through numpy, and the checks every table
passes, each failure a :class:`WorkloadError` that says what to fix in the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from regcore.workloads._common import FloatArray
from regcore.workloads._registry import WorkloadError

MIN_ROWS = 10


class TableParams(Protocol):
    """What reading a table needs of the workload's parameters (``TabularFileParams``)."""

    @property
    def path(self) -> str: ...
    @property
    def target(self) -> str: ...
    @property
    def task(self) -> str: ...


def check_values(x: FloatArray, y: npt.NDArray[Any], params: TableParams) -> None:
    name, target = params.path, params.target
    if len(y) < MIN_ROWS:
        raise WorkloadError(f"{name} has {len(y)} rows, but at least {MIN_ROWS} are needed")
    if params.task == "regression" and y.dtype.kind not in "biuf":
        raise WorkloadError(
            f"target {target!r} of {name} is not numeric ({y.dtype}); use task: "
            f"classification, or encode it as numbers"
        )
    if y.dtype.kind in "biuf" and not np.isfinite(y.astype(np.float64)).all():
        raise WorkloadError(
            f"target {target!r} of {name} has missing or infinite values; fill or drop those rows"
        )
    if not np.isfinite(x).all():
        rows = int((~np.isfinite(x)).any(axis=1).sum())
        raise WorkloadError(
            f"{name} has missing or infinite feature values in {rows} of its {len(y)} rows; "
            f"fill or drop them"
        )


def read_frame(file: Path, params: TableParams) -> tuple[FloatArray, npt.NDArray[Any]]:
    try:
        import pandas as pd
    except ImportError:
        raise WorkloadError(
            f"reading {file.suffix} files needs pandas and pyarrow; pip install 'regsweep[tabular]'"
        ) from None
    try:
        if params.path.lower().endswith((".parquet", ".pq")):
            frame = pd.read_parquet(file)
        else:
            frame = pd.read_csv(file)
    except Exception as exc:  # any reader error is the file's problem, and the user's to fix
        raise WorkloadError(f"could not read {params.path}: {exc}") from None
    names = [str(c) for c in frame.columns]
    frame.columns = names
    if params.target not in names:
        raise WorkloadError(
            f"{params.path} has no column {params.target!r}; its columns are "
            f"{_listing(names)}: set target to one of them"
        )
    feature_names = [c for c in names if c != params.target]
    if not feature_names:
        raise WorkloadError(f"{params.path} has no columns besides the target {params.target!r}")
    bad = [c for c in feature_names if not pd.api.types.is_numeric_dtype(frame[c])]
    if bad:
        raise WorkloadError(
            f"feature columns of {params.path} must be numeric, but {_listing(bad)} are not; "
            f"encode them as numbers or drop them from the file"
        )
    missing = int(frame[params.target].isna().sum())
    if missing:
        raise WorkloadError(
            f"target {params.target!r} of {params.path} is missing in {missing} rows; fill "
            f"or drop them"
        )
    x = frame[feature_names].to_numpy(dtype=np.float64, na_value=np.nan)
    return x, frame[params.target].to_numpy()


def read_npz(file: Path, params: TableParams) -> tuple[FloatArray, npt.NDArray[Any]]:
    try:
        with np.load(file, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except Exception as exc:
        raise WorkloadError(f"could not read {params.path}: {exc}") from None
    if params.target not in arrays:
        raise WorkloadError(
            f"{params.path} has no array {params.target!r}; its arrays are "
            f"{_listing(list(arrays))}: set target to one of them"
        )
    y = arrays.pop(params.target)
    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1):
        raise WorkloadError(
            f"target array {params.target!r} of {params.path} must be 1-D, but has shape {y.shape}"
        )
    y = y.reshape(-1)
    if "X" in arrays:
        x = arrays["X"]
        x = x.reshape(-1, 1) if x.ndim == 1 else x
        if x.ndim != 2:
            raise WorkloadError(f"array 'X' of {params.path} must be 2-D, but has shape {x.shape}")
        columns = {"X": x}
    else:
        columns = {k: a.reshape(-1, 1) for k, a in arrays.items() if a.ndim == 1}
        if not columns:
            raise WorkloadError(
                f"{params.path} needs a 2-D array 'X' of features, or one 1-D array per "
                f"feature column, besides the target {params.target!r}"
            )
    bad = [k for k, a in columns.items() if a.dtype.kind not in "biuf" or len(a) != len(y)]
    if bad:
        raise WorkloadError(
            f"feature arrays of {params.path} must be numeric with one row per target value "
            f"({len(y)}), but {_listing(bad)} are not; fix or drop them"
        )
    return np.hstack([a.astype(np.float64) for a in columns.values()]), y


def _listing(names: list[str], limit: int = 20) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")
