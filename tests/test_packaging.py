"""The package's shape: a light core, light client commands, and the dependency direction
``service → regcore ← worker`` with the command line as the composition root."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regcore.cli import app
from regcore.cli._extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "optuna", "sqlalchemy", "pandas", "fastapi", "plotly")


def imported_top_levels(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_regcore_below_the_command_line_imports_neither_service_nor_worker() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_top_levels(path) & {"service", "worker"})
        for path in (ROOT / "regcore").rglob("*.py")
        if "cli" not in path.relative_to(ROOT / "regcore").parts
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_service_and_worker_never_import_each_other() -> None:
    for package, other in (("service", "worker"), ("worker", "service")):
        for path in (ROOT / package).rglob("*.py"):
            assert other not in imported_top_levels(path), path


def loaded_after(code: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has loaded after running ``code``."""
    probe = (
        f"{code}\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded: list[str] = json.loads(result.stdout.splitlines()[-1])
    return loaded


def test_the_regularizer_core_loads_torch_and_nothing_heavier() -> None:
    code = (
        "import torch\n"
        "from regcore.regularizers import Regularizer, sparsity\n"
        "model = torch.nn.Linear(4, 2)\n"
        "reg = Regularizer(model, l1=1e-3, l2=1e-3, method='proximal')\n"
        "reg.attach(torch.optim.SGD(reg.param_groups(), lr=0.1))\n"
        "sparsity(model)\n"
    )
    assert loaded_after(code) == ["torch"]


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["submit", "--help"],
        ["submit", "examples/digits.yaml"],
        ["status"],
        ["status", "abc123", "--watch"],
        ["cancel", "abc123"],
    ],
    ids=lambda argv: " ".join(argv),
)
def test_client_commands_load_neither_torch_nor_sklearn(argv: list[str]) -> None:
    # A service that is not there: the commands go as far as sending their request.
    code = (
        "import os, sys\n"
        "os.environ['REGSWEEP_SERVICE_URL'] = 'http://127.0.0.1:9'\n"
        f"sys.argv = ['regsweep', *{argv!r}]\n"
        "from regcore.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
    )
    loaded = loaded_after(code)
    assert "torch" not in loaded
    assert "sklearn" not in loaded


@pytest.mark.parametrize(
    ("argv", "extra"),
    [(["serve"], "service"), (["dashboard"], "service"), (["report", "x", "--storage"], "reports")],
)
def test_a_command_without_its_extra_names_the_extra_and_exits_2(
    argv: list[str], extra: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(EXTRAS, extra, ("regsweep_no_such_module",))
    if argv[-1] == "--storage":
        argv = [*argv, f"sqlite:///{tmp_path / 'r.db'}"]
    result = CliRunner().invoke(app, argv)
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert f"pip install 'regsweep[{extra}]'" in line
    assert "Traceback" not in result.output


def test_a_postgresql_url_without_its_driver_names_the_extra(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(EXTRAS, "postgres", ("regsweep_no_such_module",))
    url = "postgresql://postgres@127.0.0.1:5432/postgres"
    result = CliRunner().invoke(app, ["status", "--storage", url])
    assert result.exit_code == 2
    assert "pip install 'regsweep[postgres]'" in " ".join(result.output.split())
