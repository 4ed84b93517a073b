"""Training functions as workloads: the decorator, the TrialContext, registration through an
entry point or REGSWEEP_PLUGINS, and which code a trial ran (provenance)."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from pydantic import BaseModel
from torch import nn

from regcore.spec import SpecError, parse_spec
from regcore.workloads import (
    ENTRY_POINT_GROUP,
    AnyParams,
    TrainingFunction,
    TrialContext,
    TrialStopped,
    WorkloadError,
    WorkloadPluginError,
    _registry,
    available_workloads,
    build_workload,
    get_workload,
    load_plugin_modules,
    provenance,
    training_function,
)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A private copy of the registry for this test only."""
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))
    monkeypatch.setattr(_registry, "_MODULES", [])


def context(**overrides: Any) -> TrialContext:
    values: dict[str, Any] = {
        "l1": 1e-3,
        "l2": 1e-2,
        "method": "proximal",
        "lr": 0.1,
        "epochs": 3,
        "seed": 0,
        "device": torch.device("cpu"),
        "params": {},
        "data_dir": None,
        "number": 0,
    }
    return TrialContext(**{**values, **overrides})


def test_the_decorator_registers_the_function_under_its_name(registry: None) -> None:
    @training_function(name="deco_test", metrics=("val_loss", "acc"), maximize=("acc",))
    def train(ctx: TrialContext) -> dict[str, float]:
        return {"val_loss": ctx.lr, "acc": 1.0}

    assert isinstance(train, TrainingFunction)
    assert get_workload("deco_test") is train
    assert (train.metrics, train.maximize, train.Params) == (
        ("val_loss", "acc"),
        frozenset({"acc"}),
        AnyParams,
    )
    assert train(context(lr=0.5)) == {"val_loss": 0.5, "acc": 1.0}  # still callable as is


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "two words", "metrics": ("x",)}, r"like a workload \(e.g. my_cnn\)"),
        ({"name": "f", "metrics": ()}, "metrics must name what the function returns"),
        ({"name": "f", "metrics": ("x",), "maximize": ("y",)}, r"maximize \['y'\] are not in"),
        ({"name": "f", "metrics": ("x",), "params": dict}, "params must be a pydantic model"),
    ],
)
def test_a_bad_declaration_is_refused_at_import(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        training_function(**kwargs)


def test_a_name_taken_by_a_builtin_is_refused(registry: None) -> None:
    with pytest.raises(WorkloadError, match=r"a workload named 'digits_mlp' is already registered"):

        @training_function(name="digits_mlp", metrics=("val_loss",))
        def train(ctx: TrialContext) -> dict[str, float]:
            return {}


def test_a_training_function_is_not_built_like_a_workload(registry: None) -> None:
    @training_function(name="not_built", metrics=("val_loss",))
    def train(ctx: TrialContext) -> dict[str, float]:
        return {}

    with pytest.raises(WorkloadError, match="is a training function"):
        build_workload("not_built")


def test_the_context_regularizer_has_the_trials_setting_and_the_specs_defaults() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.Linear(3, 1))
    ctx = context(regularize={"exclude": None, "only": ["1.*"]})
    reg = ctx.regularizer(model)
    assert (reg.l1, reg.l2, reg.method) == (1e-3, 1e-2, "proximal")
    assert [name for name, _ in reg.named_parameters] == ["1.weight"]
    other = ctx.regularizer(model, only=None, exclude=["*.bias"])  # the function's word wins
    assert [name for name, _ in other.named_parameters] == ["0.weight", "1.weight"]
    assert ctx.regularizers == [reg, other]  # the runner measures the last one


def test_report_records_the_history_and_stops_when_told() -> None:
    def report(epoch: int, metrics: dict[str, float]) -> None:
        if epoch == 1:
            raise TrialStopped("pruned after epoch 2", pruned=True)

    ctx = context(_report=report)
    ctx.report(0, {"val_loss": torch.tensor(0.5)})  # type: ignore[dict-item]
    with pytest.raises(TrialStopped) as stopped:
        ctx.report(1, {"val_loss": 0.4})
    assert stopped.value.pruned
    assert ctx.history == [{"epoch": 0.0, "val_loss": 0.5}, {"epoch": 1.0, "val_loss": 0.4}]


class WidthParams(BaseModel):
    width: int = 8


def test_a_spec_checks_params_with_the_functions_model(registry: None) -> None:
    @training_function(name="with_params", metrics=("val_loss",), params=WidthParams)
    def train(ctx: TrialContext) -> dict[str, float]:
        return {}

    data: dict[str, Any] = {
        "name": "s",
        "workload": {"name": "with_params", "params": {"width": "wide"}},
        "search_space": {"l1": 0, "l2": 0, "params": {"depth": {"choices": [1, 2]}}},
    }
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    fields = {p.field for p in info.value.problems}
    assert "workload.params.width" in fields
    data["workload"]["params"] = {"width": 16}
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    assert {p.field for p in info.value.problems} == {"search_space.params.depth"}
    data["search_space"]["params"] = {"width": {"choices": [16, 32]}}
    assert parse_spec(data).workload.params == {"width": 16}


PLUGIN = """\
from regcore.workloads import TrialContext, training_function


@training_function(name="{name}", metrics=("val_loss",))
def train(ctx: TrialContext) -> dict[str, float]:
    return {{"val_loss": 0.0}}
"""


def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """A distribution on sys.path (its dist-info, as pip leaves it) whose entry point names
    a training function."""
    (tmp_path / f"{module}.py").write_text(PLUGIN.format(name=module))
    info = tmp_path / f"{module}-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text(f"{module}\n")
    (info / "RECORD").write_text(f"{module}.py,,\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{module} = {module}:train\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setattr(_registry, "_plugins_loaded", False)
    _registry._distributions.cache_clear()
    monkeypatch.setattr(_registry, "_distributions", _registry._distributions)


def test_an_entry_point_may_name_a_training_function(
    registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed_plugin(tmp_path, monkeypatch, "regsweep_fn_plugin")
    function = available_workloads()["regsweep_fn_plugin"]
    assert isinstance(function, TrainingFunction)
    assert provenance(function) == "regsweep_fn_plugin 1.2.3"  # the installed distribution


def test_plugin_modules_register_their_functions(
    registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "my_loose_module.py").write_text(PLUGIN.format(name="loose_fn"))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_loose_module", raising=False)
    load_plugin_modules(["my_loose_module"])
    assert isinstance(get_workload("loose_fn"), TrainingFunction)
    assert _registry.plugin_modules() == ("my_loose_module",)
    # Not installed: the module's file hash says which code ran.
    assert provenance(get_workload("loose_fn")).startswith("my_loose_module sha256:")


def test_provenance_is_the_code_imported_not_the_file_edited_since(
    registry: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "my_edited_module.py"
    source.write_text(PLUGIN.format(name="edited_fn"))
    imported = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_edited_module", raising=False)
    load_plugin_modules(["my_edited_module"])
    source.write_text(PLUGIN.format(name="edited_fn").replace("0.0", "1.0"))  # edited after
    function = get_workload("edited_fn")
    assert provenance(function) == f"my_edited_module sha256:{imported}"
    assert function(context()) == {"val_loss": 0.0}  # the code that runs is the imported
    # Imported again, the module is the edited code, and says so.
    monkeypatch.delitem(sys.modules, "my_edited_module")
    monkeypatch.setattr(_registry, "_REGISTRY", {})
    load_plugin_modules(["my_edited_module"])
    edited = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    assert provenance(get_workload("edited_fn")) == f"my_edited_module sha256:{edited}"


def test_a_plugin_module_that_fails_to_import_is_named(registry: None) -> None:
    with pytest.raises(WorkloadPluginError) as info:
        load_plugin_modules(["no_such_module_for_regsweep"])
    assert str(info.value) == (
        "REGSWEEP_PLUGINS names 'no_such_module_for_regsweep', which failed to import: "
        "ModuleNotFoundError: No module named 'no_such_module_for_regsweep'"
    )


def test_a_builtins_provenance_is_regsweeps_version() -> None:
    assert provenance(get_workload("digits_mlp")).startswith("regsweep ")


def test_the_builtins_distribution_is_the_one_that_installs_regcore() -> None:
    from importlib.metadata import packages_distributions

    from regcore.workloads._registry import OWN_DISTRIBUTION

    assert set(packages_distributions()["regcore"]) == {OWN_DISTRIBUTION}
