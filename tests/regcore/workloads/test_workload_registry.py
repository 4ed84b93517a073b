"""The registry: built-ins by name, parameter errors that name the field, plug-ins."""

from __future__ import annotations

import logging
from importlib.metadata import EntryPoint
from typing import Any

import pytest
import torch
from torch import nn

from regcore.workloads import (
    ENTRY_POINT_GROUP,
    Dataset,
    Workload,
    WorkloadError,
    WorkloadParams,
    _registry,
    available_workloads,
    build_workload,
    get_workload,
    register_workload,
)

BUILTINS = {
    "digits_mlp",
    "digits_cnn",
    "breast_cancer_logreg",
    "diabetes_linear",
    "sparse_regression",
    "tabular_file",
}


class PluginParams(WorkloadParams):
    width: int = 2


class PluginWorkload(Workload[PluginParams]):
    """A third-party workload, as a plug-in package would define it."""

    name = "plugin_task"
    task = "regression"
    Params = PluginParams
    metrics = ("val_loss",)

    def load_data(self, *, seed: int) -> Dataset:
        x = torch.zeros(4, self.params.width)
        return Dataset(x_train=x, y_train=x[:, :1], x_val=x, y_val=x[:, :1])

    def build_model(self, *, seed: int) -> nn.Module:
        torch.manual_seed(seed)
        return nn.Linear(self.params.width, 1)


class ImpostorWorkload(PluginWorkload):
    name = "digits_mlp"


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A private copy of the registry, and no installed plug-ins, for this test only."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    monkeypatch.setattr(_registry, "_plugins_loaded", False)
    monkeypatch.setattr(_registry, "entry_points", lambda **_: [])


def entry_point(name: str, target: str) -> EntryPoint:
    return EntryPoint(name=name, value=f"{__name__}:{target}", group=ENTRY_POINT_GROUP)


def test_registry_lists_every_builtin() -> None:
    assert set(available_workloads()) >= BUILTINS


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_declares_its_contract(name: str) -> None:
    cls = get_workload(name)
    assert cls.name == name
    assert cls.name.replace("_", "") in cls.__name__.lower()
    assert cls.__name__.endswith("Workload")
    assert "val_loss" in cls.metrics
    assert cls.maximize <= set(cls.metrics)
    assert cls.task in ("classification", "regression")
    assert cls.Params.model_config.get("extra") == "forbid"


def test_unknown_workload_lists_the_registered_ones() -> None:
    with pytest.raises(WorkloadError, match="unknown workload 'digits_mpl'") as info:
        build_workload("digits_mpl")
    assert "digits_mlp" in str(info.value)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("digits_mlp", {"hiden": [3]}, "params.hiden"),
        ("digits_mlp", {"hidden": [0]}, "params.hidden.0"),
        ("digits_mlp", {"hidden": "wide"}, "params.hidden"),
        ("digits_mlp", {"train_size": 5}, "params.train_size"),
        ("digits_cnn", {"hidden": []}, "params.hidden"),
        ("digits_cnn", {"dropout": 1.0}, "params.dropout"),
        ("breast_cancer_logreg", {"val_fraction": 0.9}, "params.val_fraction"),
        ("diabetes_linear", {"split_seed": -1}, "params.split_seed"),
        ("sparse_regression", {"n_samples": 5}, "params.n_samples"),
        ("sparse_regression", {"n_features": 5, "n_informative": 6}, "n_informative"),
        ("sparse_regression", {"n_samples": 10**6, "n_features": 10**5}, "n_samples × n_f"),
        ("digits_mlp", {"hidden": [8] * 9}, "params.hidden"),
        ("tabular_file", {"path": "x.csv"}, "params.task"),
        ("tabular_file", {"path": "x.txt", "task": "regression"}, "params.path"),
    ],
)
def test_bad_params_name_the_field(name: str, params: dict[str, Any], field: str) -> None:
    with pytest.raises(WorkloadError, match=f"workload '{name}'") as info:
        build_workload(name, params)
    assert field in str(info.value)


def test_register_workload_makes_a_subclass_buildable(registry: None) -> None:
    assert register_workload(PluginWorkload) is PluginWorkload
    assert register_workload(PluginWorkload) is PluginWorkload  # again: a no-op
    workload = build_workload("plugin_task", {"width": 3})
    assert isinstance(workload, PluginWorkload)
    assert workload.load_data(seed=0).x_train.shape == (4, 3)


def test_duplicate_workload_name_is_refused(registry: None) -> None:
    with pytest.raises(WorkloadError, match="'digits_mlp' is already registered"):
        register_workload(ImpostorWorkload)
    assert get_workload("digits_mlp") is not ImpostorWorkload


def test_entry_point_plugin_is_registered_by_name(
    registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    points = [entry_point("plugin_task", "PluginWorkload")]
    monkeypatch.setattr(_registry, "entry_points", lambda **_: points)
    assert get_workload("plugin_task") is PluginWorkload
    assert set(available_workloads()) >= BUILTINS | {"plugin_task"}


def test_broken_plugins_are_logged_and_skipped(
    registry: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    points = [
        entry_point("missing", "NoSuchThing"),
        entry_point("not_a_workload", "PluginParams"),
        entry_point("impostor", "ImpostorWorkload"),
    ]
    monkeypatch.setattr(_registry, "entry_points", lambda **_: points)
    with caplog.at_level(logging.ERROR, logger=_registry.__name__):
        workloads = available_workloads()
    assert set(workloads) >= BUILTINS
    assert not {"missing", "not_a_workload", "impostor"} & set(workloads)
    assert workloads["digits_mlp"] is not ImpostorWorkload
    assert len(caplog.records) == 3
