"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
ROOT = Path(__file__).resolve().parents[1]
# What regsweep writes into its working directory by default (settings) or a build leaves.
_RUN_OUTPUTS = ("artifacts", "data", "regsweep.db", "build")


@pytest.fixture(params=DEVICES)
def device(request: pytest.FixtureRequest) -> torch.device:
    """Every device present: the CPU always, CUDA where there is one."""
    return torch.device(request.param)


@pytest.fixture(scope="session", autouse=True)
def _nothing_written_into_the_repository() -> Iterator[None]:
    """Tests work in their own folders: a test that leaves regsweep's outputs in the
    checkout (its defaults are relative to the working directory) fails the session."""
    before = {name for name in _RUN_OUTPUTS if (ROOT / name).exists()}
    yield
    written = {name for name in _RUN_OUTPUTS if (ROOT / name).exists()} - before
    assert not written, f"the tests wrote {sorted(written)} into {ROOT}; give them a tmp_path"
