"""The cost probe: each listed method timed on the sweep's own model, once per sweep and
device, kept on the study for every worker and the report."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import optuna
import pytest

import tests.plugins.functions  # noqa: F401  (registers test_linear)
from regcore.spec import SweepSpec, parse_spec
from regcore.store import create_storage
from regcore.sweeps.results import method_costs
from regcore.worker import probe
from regcore.worker.probe import CostProbes, measure

optuna.logging.set_verbosity(optuna.logging.WARNING)


def make_spec(**search_space: Any) -> SweepSpec:
    return parse_spec(
        {
            "name": "probe-test",
            "workload": {"name": "digits_mlp", "params": {"hidden": [16]}},
            "search_space": {"l1": 1e-4, "l2": 1e-4, **search_space},
            "training": {"epochs": 2, "batch_size": 32, "device": "cpu"},
        }
    )


def make_study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(storage=create_storage(f"sqlite:///{tmp_path / 'p.db'}"))


def test_measure_times_the_methods_a_class_chooses_between_and_no_regularizer() -> None:
    costs = measure(make_spec(method=["loss", "hook", "proximal"]), device="cpu", data_dir=None)
    assert set(costs) == {"none", "loss", "hook"}  # proximal is a class of its own
    assert all(0 < ms < 1000 for ms in costs.values())


def test_a_probe_is_measured_once_and_kept_on_the_study(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec(method=["loss", "fused"])
    study = make_study(tmp_path)
    calls = []
    real = probe.measure

    def counted(*args: Any, **kwargs: Any) -> dict[str, float]:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(probe, "measure", counted)
    first = CostProbes(device="cpu", data_dir=None).costs(study, spec)
    assert first is not None
    assert CostProbes(device="cpu", data_dir=None).costs(study, spec) == first  # another worker
    assert len(calls) == 1
    assert method_costs(study) == {"cpu": first}


def test_one_method_per_class_or_a_training_function_is_not_probed(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    probes = CostProbes(device="cpu", data_dir=None)
    assert probes.costs(study, make_spec(method="fused")) is None
    assert probes.costs(study, make_spec(method=["fused", "proximal"])) is None  # one each
    own = parse_spec(
        {
            "name": "own",
            "workload": {"name": "test_linear"},
            "search_space": {"l1": 0, "l2": 1e-4, "method": ["loss", "hook"]},
        }
    )
    assert probes.costs(study, own) is None
    assert method_costs(study) == {}


def test_a_failed_probe_costs_the_choice_not_the_trial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any, **kwargs: Any) -> dict[str, float]:
        raise RuntimeError("no memory for the probe")

    monkeypatch.setattr(probe, "measure", broken)
    with caplog.at_level(logging.WARNING, logger="regcore.worker.probe"):
        costs = CostProbes(device="cpu", data_dir=None).costs(
            make_study(tmp_path), make_spec(method=["loss", "hook"])
        )
    assert costs is None
    assert "cost probe failed (no memory for the probe)" in caplog.text
