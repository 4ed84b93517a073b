"""The regsweep command as a user meets it: exit codes and messages, never a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regcore.cli import app
from regcore.store import list_workers
from tests.waiting import wait_until
from tests.worker.cluster import Cluster

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


def test_gpus_all_without_a_gpu_says_to_use_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # as on a machine without a GPU

    result = runner.invoke(app, ["worker", "--gpus", "all"])

    assert result.exit_code == 2
    assert "no CUDA device is visible; use --device cpu" in result.output


def test_gpus_takes_only_all() -> None:
    result = runner.invoke(app, ["worker", "--gpus", "2"])

    assert result.exit_code == 2
    assert "--gpus takes 'all'" in result.output


def test_worker_processes_stop_together_on_sigterm(tmp_path: Path) -> None:
    """The machinery of ``--gpus all`` (one process per device), with CPU devices: SIGTERM
    to the parent alone (as ``docker stop`` sends it) stops every worker, none is orphaned."""
    cluster = Cluster(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    sweep_id = cluster.submit("two-processes", 4)
    options = ", ".join(
        f"WorkerOptions(database_url={cluster.url!r}, device='cpu', heartbeat_s=1, grace_s=4)"
        for _ in range(2)
    )
    script = (
        "import sys\n"
        "from regcore.worker.processes import run_worker_processes\n"
        "from regcore.worker.options import WorkerOptions\n"
        f"sys.exit(run_worker_processes([{options}]).failed)\n"
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    parent = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        wait_until(lambda: cluster.status(sweep_id) == "completed", 180, "the sweep")
        wait_until(lambda: len(list_workers(cluster.engine)) == 2, 30, "two workers")
        pids = [w.pid for w in list_workers(cluster.engine)]
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=60) == 0
        assert list_workers(cluster.engine) == []  # both deregistered
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
    finally:
        if parent.poll() is None:
            parent.kill()
        cluster.stop()


def test_a_plugin_module_that_fails_to_import_exits_2_naming_it() -> None:
    env = {"REGSWEEP_PLUGINS": "regsweep_no_such_plugin"}
    result = runner.invoke(app, ["validate", str(EXAMPLE)], env=env)
    assert result.exit_code == 2
    assert " ".join(result.output.split()) == (
        "REGSWEEP_PLUGINS names 'regsweep_no_such_plugin', which failed to import: "
        "ModuleNotFoundError: No module named 'regsweep_no_such_plugin'"
    )
