"""tabular_file: CSV, Parquet and NPZ from the data directory, and nothing outside it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from regcore.workloads import Dataset, TabularFileWorkload, Workload, WorkloadError, build_workload


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    root.mkdir()
    return root


def frame(n: int = 120, seed: int = 0) -> pd.DataFrame:
    """Two informative features, one noise feature; a class label and a regression target."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1] * 10 + 5,
            "noise": x[:, 2],
            "label": np.where(x[:, 0] + x[:, 1] > 0, "yes", "no"),
            "price": 3 * x[:, 0] - 2 * x[:, 1] + 0.1 * rng.standard_normal(n),
        }
    )


def tabular(data_dir: Path | None, **params: Any) -> Workload[Any]:
    return build_workload("tabular_file", params, data_dir=data_dir)


def fit(workload: Workload[Any], data: Dataset, *, epochs: int = 20) -> torch.nn.Module:
    model = workload.build_model(seed=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(epochs):
        for index in torch.arange(data.x_train.shape[0]).split(32):
            optimizer.zero_grad()
            workload.loss(model(data.x_train[index]), data.y_train[index]).backward()
            optimizer.step()
    return model.eval()


def test_reads_csv_classification_with_text_labels_and_learns(data_dir: Path) -> None:
    frame().to_csv(data_dir / "train.csv", index=False)
    workload = tabular(data_dir, path="train.csv", target="label", task="classification")
    data = workload.load_data(seed=0)
    assert data.x_train.shape == (90, 4)  # a, b, noise, price
    assert data.x_train.dtype == torch.float32
    assert data.y_train.dtype == torch.int64
    assert isinstance(workload, TabularFileWorkload)
    assert workload.classes is not None
    assert list(workload.classes) == ["no", "yes"]
    model = workload.build_model(seed=0)
    assert isinstance(model, torch.nn.Sequential)
    assert model(data.x_val).shape == (30, 2)
    before = workload.evaluate(model.eval(), data.x_val, data.y_val)
    after = workload.evaluate(fit(workload, data), data.x_val, data.y_val)
    assert set(after) == {"val_loss", "val_accuracy"}
    assert after["val_loss"] < before["val_loss"]
    assert after["val_accuracy"] > before["val_accuracy"]


def test_reads_parquet_regression_and_learns(data_dir: Path) -> None:
    (data_dir / "sub").mkdir()
    frame().drop(columns="label").to_parquet(data_dir / "sub" / "t.parquet")
    workload = tabular(data_dir, path="sub/t.parquet", target="price", task="regression")
    assert workload.task == "regression"
    data = workload.load_data(seed=0)
    assert data.y_train.shape == (90, 1)
    assert data.y_train.dtype == torch.float32
    before = workload.evaluate(workload.build_model(seed=0), data.x_val, data.y_val)
    after = workload.evaluate(fit(workload, data), data.x_val, data.y_val)
    assert set(after) == {"val_loss", "val_r2"}
    assert after["val_loss"] < before["val_loss"]
    assert after["val_r2"] > max(before["val_r2"], 0.5)


def test_reads_npz_with_x_and_y(data_dir: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6))
    np.savez(data_dir / "arrays.npz", X=x, y=(x[:, 0] > 0).astype(np.int64))
    workload = tabular(data_dir, path="arrays.npz", task="classification", hidden=[8])
    data = workload.load_data(seed=0)
    assert data.x_train.shape[1] == 6
    assert data.x_train.shape[0] + data.x_val.shape[0] == 50
    assert workload.build_model(seed=0)(data.x_val).shape == (data.x_val.shape[0], 2)


def test_reads_npz_with_one_array_per_column(data_dir: Path) -> None:
    columns = {k: np.asarray(v) for k, v in frame().drop(columns="label").items()}
    np.savez(data_dir / "columns.npz", **columns)
    workload = tabular(data_dir, path="columns.npz", target="price", task="regression")
    assert workload.load_data(seed=0).x_train.shape == (90, 3)


def test_same_file_and_seed_give_same_split_and_init(data_dir: Path) -> None:
    frame().to_csv(data_dir / "t.csv", index=False)
    params = {"path": "t.csv", "target": "label", "task": "classification", "hidden": [4]}
    a, b = tabular(data_dir, **params), tabular(data_dir, **params)
    assert torch.equal(a.load_data(seed=0).x_val, b.load_data(seed=0).x_val)
    one, two = a.build_model(seed=1).state_dict(), b.build_model(seed=1).state_dict()
    assert all(torch.equal(one[k], two[k]) for k in one)


@pytest.mark.parametrize("path", ["../x.csv", "sub/../../x.csv", "..\\x.csv"])
def test_refuses_parent_directory(data_dir: Path, path: str) -> None:
    with pytest.raises(WorkloadError, match=r"params\.path.*data directory"):
        tabular(data_dir, path=path, task="regression")


def test_refuses_absolute_path(data_dir: Path, tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "outside.csv", index=False)
    with pytest.raises(WorkloadError, match=r"params\.path.*relative to the data directory"):
        tabular(data_dir, path=str(tmp_path / "outside.csv"), task="regression")


def test_refuses_symlink_leading_out(data_dir: Path, tmp_path: Path) -> None:
    frame().to_csv(tmp_path / "secret.csv", index=False)
    os.symlink(tmp_path / "secret.csv", data_dir / "inside.csv")
    workload = tabular(data_dir, path="inside.csv", target="price", task="regression")
    with pytest.raises(WorkloadError, match="leads out of the data directory") as info:
        workload.load_data(seed=0)
    assert str(data_dir.resolve()) in str(info.value)
    assert "copy the file" in str(info.value)


def test_follows_symlink_within_data_dir(data_dir: Path) -> None:
    frame().drop(columns="label").to_csv(data_dir / "real.csv", index=False)
    os.symlink(data_dir / "real.csv", data_dir / "alias.csv")
    workload = tabular(data_dir, path="alias.csv", target="price", task="regression")
    assert workload.load_data(seed=0).x_train.shape == (90, 3)


def test_refuses_without_a_data_dir() -> None:
    workload = tabular(None, path="t.csv", task="regression")
    with pytest.raises(WorkloadError, match="REGSWEEP_DATA_DIR"):
        workload.load_data(seed=0)


def test_missing_file_is_named(data_dir: Path) -> None:
    workload = tabular(data_dir, path="nope.csv", task="regression")
    with pytest.raises(WorkloadError, match=r"no file 'nope\.csv' in the data directory"):
        workload.load_data(seed=0)


def test_missing_target_lists_the_columns(data_dir: Path) -> None:
    frame().to_csv(data_dir / "t.csv", index=False)
    workload = tabular(data_dir, path="t.csv", target="cost", task="regression")
    with pytest.raises(WorkloadError, match=r"no column 'cost'.*'price'"):
        workload.load_data(seed=0)


def test_non_numeric_features_are_named(data_dir: Path) -> None:
    frame().to_csv(data_dir / "t.csv", index=False)
    workload = tabular(data_dir, path="t.csv", target="price", task="regression")
    with pytest.raises(WorkloadError, match=r"'label' are not.*encode them as numbers"):
        workload.build_model(seed=0)


def test_missing_feature_values_are_refused(data_dir: Path) -> None:
    table = frame().drop(columns="label")
    table.loc[3, "a"] = np.nan
    table.to_csv(data_dir / "t.csv", index=False)
    workload = tabular(data_dir, path="t.csv", target="price", task="regression")
    with pytest.raises(WorkloadError, match=r"t\.csv has missing .* in 1 of its 120 rows"):
        workload.load_data(seed=0)


def test_text_target_for_regression_is_refused(data_dir: Path) -> None:
    frame().drop(columns="price").to_csv(data_dir / "t.csv", index=False)
    workload = tabular(data_dir, path="t.csv", target="label", task="regression")
    with pytest.raises(WorkloadError, match="use task: classification"):
        workload.load_data(seed=0)


def test_continuous_target_for_classification_is_refused(data_dir: Path) -> None:
    frame().drop(columns="label").to_csv(data_dir / "t.csv", index=False)
    workload = tabular(data_dir, path="t.csv", target="price", task="classification")
    with pytest.raises(WorkloadError, match="use task: regression"):
        workload.load_data(seed=0)
