"""The registry: built-ins by name, parameter errors that name the field, plug-ins."""

from __future__ import annotations

import logging
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from regcore.spec import SpecError, parse_spec
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
    monkeypatch.setattr(_registry, "_FAILED", {})
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
    assert all(r.exc_info is None for r in caplog.records)


BROKEN_MODULE = "regsweep_broken_plugin"
BROKEN_VALUE = f"{BROKEN_MODULE}:BrokenWorkload"
BROKEN_WHY = "RuntimeError: needs libfoo 2.0; pip install libfoo"


@pytest.fixture
def broken_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installed distribution (a dist-info on sys.path, as pip leaves it) whose workload
    ``broken_task`` raises on import; the registry reads the real entry points."""
    info = tmp_path / "regsweep_broken_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: regsweep-broken-plugin\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nbroken_task = {BROKEN_VALUE}\n")
    (tmp_path / f"{BROKEN_MODULE}.py").write_text(
        "raise RuntimeError('needs libfoo 2.0;\\n  pip install libfoo')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, BROKEN_MODULE, raising=False)
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    monkeypatch.setattr(_registry, "_FAILED", {})
    monkeypatch.setattr(_registry, "_plugins_loaded", False)


def test_plugin_that_fails_to_import_is_logged_in_one_line(
    broken_plugin: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger=_registry.__name__):
        workloads = available_workloads()
    assert set(workloads) >= BUILTINS
    assert "broken_task" not in workloads
    (record,) = caplog.records
    assert record.exc_info is None
    assert record.getMessage() == (
        f"workload plug-in 'broken_task' ({BROKEN_VALUE}) failed to load: {BROKEN_WHY}"
    )
    assert caplog.text.count("\n") == 1  # no traceback, the message's line break folded


def test_build_workload_names_the_plugin_that_failed_to_load(broken_plugin: None) -> None:
    with pytest.raises(WorkloadError) as info:
        build_workload("broken_task")
    assert str(info.value) == (
        f"workload plug-in 'broken_task' ({BROKEN_VALUE}) failed to load: {BROKEN_WHY}"
    )
    assert "unknown workload" not in str(info.value)


def test_spec_naming_a_plugin_that_failed_to_load_says_why(broken_plugin: None) -> None:
    data = {"name": "s", "workload": {"name": "broken_task"}, "search_space": {"l1": 0, "l2": 0}}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    problems = {p.field: p.message for p in info.value.problems}
    assert problems["workload.name"] == (
        f"workload plug-in 'broken_task' ({BROKEN_VALUE}) failed to load: {BROKEN_WHY}"
    )


def test_unknown_workload_is_still_unknown_beside_a_broken_plugin(broken_plugin: None) -> None:
    with pytest.raises(WorkloadError, match="unknown workload 'no_such_task'"):
        get_workload("no_such_task")
