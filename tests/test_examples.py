"""Every example spec is valid, and its workload builds (examples are documentation)."""

from __future__ import annotations

from pathlib import Path

import pytest

from regcore.spec import load_spec
from regcore.workloads import build_workload

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_spec_is_valid_and_its_workload_loads(path: Path) -> None:
    spec = load_spec(path)
    workload = build_workload(spec.workload.name, spec.workload.params, data_dir=EXAMPLES / "data")
    data = workload.load_data(seed=spec.training.seed)
    assert data.x_train.shape[0] > 0
    assert data.x_val.shape[0] > 0
