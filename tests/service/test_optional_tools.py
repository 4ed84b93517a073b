"""Test tools that may be missing (schemathesis): CI fails without them, elsewhere their
tests are skipped saying why, never skipped silently where a run is meant to be complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.conftest import require

ROOT = Path(__file__).resolve().parents[2]


def _run_without_schemathesis(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    """pytest on the schemathesis test where ``import schemathesis`` fails, as it does where
    it is not installed (its own pytest plugin, which would import it first, is left out)."""
    (tmp_path / "schemathesis.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'schemathesis'\", name='schemathesis')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    if ci is not None:
        env["CI"] = ci
    pytest_args = ["-q", "-rs", "-p", "no:cacheprovider", "-p", "no:schemathesis"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *pytest_args, "tests/service/test_schemathesis.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_schemathesis_fails_under_ci(tmp_path: Path) -> None:
    run = _run_without_schemathesis(tmp_path, ci="true")

    nothing_failed = {pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED}
    assert run.returncode not in nothing_failed, run.stdout
    assert "CI needs schemathesis" in run.stdout


def test_missing_schemathesis_is_skipped_elsewhere_saying_why(tmp_path: Path) -> None:
    run = _run_without_schemathesis(tmp_path, ci=None)

    assert run.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    assert "schemathesis is not installed" in run.stdout


def test_require_returns_an_installed_module(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")

    assert require("json", why="it is in the standard library") is json
