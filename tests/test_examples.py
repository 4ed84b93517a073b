"""Every example spec is valid, and its workload builds (examples are documentation)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from regcore.batch import load_batch
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


@pytest.mark.parametrize(
    "path", sorted((EXAMPLES / "batches").glob("*.yaml")), ids=lambda p: p.name
)
def test_example_batch_expands_into_valid_sweeps(path: Path) -> None:
    batch = load_batch(path)
    specs = batch.expand()

    assert len(specs) == len(list(itertools.product(*(batch.matrix or {"": [0]}).values())))
    assert len({s.name for s in specs}) == len(specs)
    assert all(s.budget.deadline == batch.deadline for s in specs)
