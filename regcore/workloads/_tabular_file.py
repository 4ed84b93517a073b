"""A table from a file the operator put in the data directory: CSV, Parquet or NPZ.

Only files under the data directory (``REGSWEEP_DATA_DIR``) are read: a spec comes from
whoever may submit sweeps, so ``path`` may not be absolute, may not contain ``..``, and may
not resolve (through symbolic links) to anywhere outside the directory.

- CSV and Parquet (``pip install 'regsweep[tabular]'`` for pandas and pyarrow): ``target`` is
  a column; every other column is a feature and must be numeric.
- NPZ (read with ``allow_pickle=False``): either a 2-D array ``X`` and the target array named
  by ``target`` (``y`` by default), or one 1-D array per column, ``target`` being one of them.

Features are standardized with the training rows' statistics, as is a regression target.
Classification targets may be numbers or strings; the classes are their sorted distinct
values. The model is an MLP with ``hidden`` widths, a linear model by default.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import torch
from pydantic import Field, field_validator
from torch import nn

from regcore.workloads._base import Dataset, Workload, WorkloadParams
from regcore.workloads._common import (
    FloatArray,
    IntArray,
    SplitSeed,
    ValFraction,
    Widths,
    features,
    labels,
    mlp,
    regression_dataset,
    regression_metrics,
    split_indices,
    standardize,
)
from regcore.workloads._registry import WorkloadError, register_workload
from regcore.workloads._tabular_read import check_values, read_frame, read_npz

SUFFIXES = (".csv", ".csv.gz", ".parquet", ".pq", ".npz")
_HOW = (
    "put the file under the data directory (REGSWEEP_DATA_DIR) and give its path relative "
    "to it, e.g. 'sales/2024.csv'"
)


class TabularFileParams(WorkloadParams):
    path: str = Field(min_length=1, description="file under the data directory, relative to it")
    target: str = Field(default="y", min_length=1, description="target column or NPZ array")
    task: Literal["classification", "regression"]
    hidden: Widths = Field(default=[], description="hidden layer widths; [] = linear model")
    val_fraction: ValFraction = Field(default=0.25, description="share of rows held out")
    split_seed: SplitSeed = Field(default=0, description="seed of the train/validation split")

    @field_validator("path")
    @classmethod
    def _relative_inside(cls, path: str) -> str:
        _check_relative(path)
        if not path.lower().endswith(SUFFIXES):
            raise ValueError(
                f"tabular_file reads {', '.join(SUFFIXES)} files, but got {path!r}; convert "
                f"the file or give it its format's suffix"
            )
        return path


def _check_relative(path: str) -> None:
    if "\0" in path:
        raise ValueError(f"a path cannot contain a NUL character; {_HOW}")
    posix, windows = PurePosixPath(path), PureWindowsPath(path)
    if posix.is_absolute() or windows.is_absolute() or windows.drive or path.startswith("\\"):
        raise ValueError(f"must be relative to the data directory, but got {path!r}; {_HOW}")
    if ".." in posix.parts or ".." in windows.parts:
        raise ValueError(f"must not leave the data directory with '..', but got {path!r}; {_HOW}")


@register_workload
class TabularFileWorkload(Workload[TabularFileParams]):
    """An MLP (linear by default) on a CSV, Parquet or NPZ table from the data directory.

    ``metrics`` lists what either task reports: ``evaluate`` returns ``val_loss`` and
    ``val_accuracy`` for classification, ``val_loss`` (MSE) and ``val_r2`` for regression.
    """

    name = "tabular_file"
    # Per instance: params.task (set in __init__); this is only the class's default.
    task: ClassVar[Literal["classification", "regression"]] = "classification"
    Params = TabularFileParams
    metrics = ("val_loss", "val_accuracy", "val_r2")
    maximize = frozenset({"val_accuracy", "val_r2"})
    split_param = "split_seed"

    def __init__(self, *, params: TabularFileParams, data_dir: Path | None = None) -> None:
        super().__init__(params=params, data_dir=data_dir)
        # The task is a parameter here, so the instance shadows the class's default; the
        # base class's loss and evaluate read self.task.
        self.task = params.task  # type: ignore[misc]
        self.classes: npt.NDArray[Any] | None = None  # class labels, in output order
        self._table: tuple[FloatArray, npt.NDArray[Any]] | None = None

    def resolve_path(self) -> Path:
        """The file, resolved, after checking that it lies inside the data directory."""
        path = self.params.path
        if self.data_dir is None:
            raise WorkloadError(
                f"tabular_file reads files only from the data directory, and none is "
                f"configured; set REGSWEEP_DATA_DIR to the folder that holds {path!r}"
            )
        root = Path(self.data_dir).resolve()
        if not root.is_dir():
            raise WorkloadError(
                f"the data directory {root} does not exist; create it and put {path!r} in it, "
                f"or point REGSWEEP_DATA_DIR at the folder that holds it"
            )
        try:
            _check_relative(path)
        except ValueError as exc:
            raise WorkloadError(f"tabular_file path {exc} ({root})") from None
        try:
            resolved = (root / path).resolve()
        except (OSError, RuntimeError) as exc:  # a symbolic-link loop, for one
            raise WorkloadError(f"cannot resolve {path!r} in {root}: {exc}") from None
        if not resolved.is_relative_to(root):
            raise WorkloadError(
                f"tabular_file path {path!r} leads out of the data directory {root} (through "
                f"a symbolic link); copy the file into {root} instead of linking to it"
            )
        if not resolved.is_file():
            raise WorkloadError(
                f"no file {path!r} in the data directory {root}; check the name, or copy the "
                f"file there"
            )
        return resolved

    def _read(self) -> tuple[FloatArray, npt.NDArray[Any]]:
        if self._table is None:
            file = self.resolve_path()
            # The format is the requested name's, whatever a link inside the directory names.
            npz = self.params.path.lower().endswith(".npz")
            x, y = read_npz(file, self.params) if npz else read_frame(file, self.params)
            check_values(x, y, self.params)
            self._table = (x, y)
        return self._table

    def _encode(self, y: npt.NDArray[Any]) -> IntArray:
        if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
            raise WorkloadError(
                f"target {self.params.target!r} of {self.params.path} has non-integer values, "
                f"but task is classification; use task: regression"
            )
        try:
            classes, codes = np.unique(y, return_inverse=True)
        except TypeError:  # e.g. numbers and strings mixed in one object column
            raise WorkloadError(
                f"target {self.params.target!r} of {self.params.path} mixes kinds of values; "
                f"write every class the same way (all numbers or all text)"
            ) from None
        if len(classes) < 2:
            raise WorkloadError(
                f"target {self.params.target!r} of {self.params.path} has a single class "
                f"({classes[0]!r}); classification needs at least two"
            )
        self.classes = classes
        return np.asarray(codes, dtype=np.int64).reshape(-1)

    def load_data(self, *, seed: int) -> Dataset:
        x, y = self._read()
        p = self.params
        if self.params.task == "classification":
            codes = self._encode(y)
            train, val = split_indices(
                len(y), val_size=p.val_fraction, seed=p.split_seed, stratify=codes
            )
            x_train, x_val = standardize(x[train], x[val])
            return Dataset(
                x_train=features(x_train),
                y_train=labels(codes[train]),
                x_val=features(x_val),
                y_val=labels(codes[val]),
            )
        return regression_dataset(
            x, y.astype(np.float64), val_fraction=p.val_fraction, split_seed=p.split_seed
        )

    def build_model(self, *, seed: int) -> nn.Module:
        x, y = self._read()  # the sizes come from the file
        outputs = int(self._encode(y).max()) + 1 if self.params.task == "classification" else 1
        torch.manual_seed(seed)
        return mlp(x.shape[1], self.params.hidden, outputs)

    @torch.no_grad()
    def evaluate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        if self.params.task == "regression":
            return regression_metrics(model(x), y)
        return super().evaluate(model, x, y)
