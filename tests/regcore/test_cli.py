"""The regsweep command as a user meets it: exit codes and messages, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from regcore.cli import app

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits.yaml"


def test_validate_prints_ok_for_a_good_spec() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0
    assert result.output.startswith("ok: digits-small-data")


def test_validate_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: bad name\n"
        "workload: {name: digits_mpl}\n"
        "search_space: {l1: -1, l2: {low: 0, high: 1, log: true}, method: l1}\n"
        "training: {epoch: 3}\n"
    )
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    for field in ("name:", "workload.name:", "search_space.l1:", "search_space.l2.low:"):
        assert field in result.output
    assert "search_space.method:" in result.output
    assert "training.epoch" in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: [unclosed", "YAML"),
        ("- just\n- a list\n", "mapping"),
    ],
)
def test_validate_reports_unreadable_files_plainly(
    content: str, message: str, tmp_path: Path
) -> None:
    spec = tmp_path / "broken.yaml"
    spec.write_text(content)
    result = runner.invoke(app, ["validate", str(spec)])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_validate_reports_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def test_run_refuses_an_invalid_spec_before_anything_runs(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nworkload: {name: digits_mlp}\nsearch_space: {l1: 0}\n")
    url = f"sqlite:///{tmp_path / 'never.db'}"
    result = runner.invoke(app, ["run", str(spec), "--storage", url])
    assert result.exit_code == 2
    assert "search_space.l2" in result.output
    assert not (tmp_path / "never.db").exists()


def test_demo_prints_a_row_per_method_and_the_baseline() -> None:
    result = runner.invoke(app, ["demo", "--epochs", "1", "--train-size", "20", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    for method in ("none", "weight_decay", "decoupled", "loss", "hook", "fused", "proximal"):
        assert f"│ {method}" in result.output
