"""The package's shape: one import namespace (``regcore``), a light core, light client
commands, and the layers ``cli → service, worker → regcore`` with no arrow running up.

The top-level ``service/``, ``worker/`` and ``cli/`` folders are packaged as
``regcore.service``, ``regcore.worker`` and ``regcore.cli`` through symlinks in ``regcore/``;
the layering tests read every module's imports with :mod:`ast`, lazy ones included."""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regcore.cli import app
from regcore.cli._extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sklearn", "optuna", "sqlalchemy", "pandas", "fastapi", "plotly")
#: The layers above the core: folders at the top level, packages inside regcore.
LAYERS = ("service", "worker", "cli")
#: Which layers each may import (the core, ``regcore``, imports none of them).
ALLOWED = {"regcore": set(), "service": set(), "worker": set(), "cli": {"service", "worker"}}
#: Folders of Python files that are not packaged: they import the packages as users do.
OUTSIDE = ("tests", "bench", "examples", "deploy", "docs")


def imported_modules(path: Path, package: str) -> set[str]:
    """Every module ``path`` imports, relative imports resolved against ``package``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def layer_of(module: str) -> str | None:
    """``service``, ``worker`` or ``cli`` for a module of that layer, ``regcore`` for the core,
    and None for a module outside the package."""
    parts = module.split(".")
    if parts[0] != "regcore":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else "regcore"


def package_modules(root: Path) -> dict[str, Path]:
    """The package's modules by name, from the folders the wheel is built from."""
    found = {}
    folders = [("regcore", root / "regcore")] + [(f"regcore.{n}", root / n) for n in LAYERS]
    for prefix, folder in folders:
        for path in folder.rglob("*.py"):
            if any(part in LAYERS for part in path.relative_to(root).parts[1:-1]):
                continue  # regcore/service/... is service/... again, through the symlink
            rel = path.relative_to(folder).with_suffix("").parts
            found[".".join((prefix, *rel)).removesuffix(".__init__")] = path
    return found


def layering_violations(root: Path) -> list[str]:
    """Every import under ``root`` that runs against the layers, one line each."""
    violations = []
    for name, path in sorted(package_modules(root).items()):
        own = layer_of(name)
        assert own is not None
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        reported: list[str] = []
        for imported in sorted(imported_modules(path, package)):
            if any(imported.startswith(f"{r}.") for r in reported):
                continue  # `from X import name`: X was reported already
            top = imported.split(".")[0]
            if top in LAYERS:
                violations.append(f"{name} imports bare {imported} (regcore.{imported})")
                reported.append(imported)
                continue
            layer = layer_of(imported)
            if layer in LAYERS and layer != own and layer not in ALLOWED[own]:
                violations.append(f"{name} ({own}) imports {imported} ({layer})")
                reported.append(imported)
    return violations


def bare_layer_imports(root: Path) -> list[str]:
    """Imports of a bare ``service``, ``worker`` or ``cli`` anywhere outside the package."""
    found = []
    for folder in OUTSIDE:
        for path in (root / folder).rglob("*.py"):
            for imported in imported_modules(path, "tests"):
                if imported.split(".")[0] in LAYERS:
                    found.append(f"{path.relative_to(root)}: {imported}")
    return found


def package_graph(root: Path) -> dict[str, set[str]]:
    """Which of the package's parts (``regcore.X`` for the core's modules and packages, and
    the three layers) import which others."""
    modules = package_modules(root)

    def part(module: str) -> str:
        return ".".join(module.split(".")[:2])

    graph: dict[str, set[str]] = {part(m): set() for m in modules if m != "regcore"}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for imported in imported_modules(path, package):
            parts = imported.split(".")
            while parts and ".".join(parts) not in modules:
                parts.pop()  # `from regcore.x import name`: the module is regcore.x
            if len(parts) >= 2 and part(".".join(parts)) != part(name):
                graph[part(name)].add(part(".".join(parts)))
    return graph


def cycle_in(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as the path around it, or [] when there is none."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = "open"
        stack.append(node)
        for following in sorted(graph.get(node, ())):
            if state.get(following) == "open":
                return [*stack[stack.index(following) :], following]
            if following not in state and (found := visit(following)):
                return found
        state[node] = "done"
        stack.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_the_package_parts_import_each_other_without_a_cycle() -> None:
    graph = package_graph(ROOT)
    assert {"regcore.service", "regcore.worker", "regcore.cli", "regcore.spec"} <= set(graph)
    assert cycle_in(graph) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    assert cycle_in({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert cycle_in({"a": {"b"}, "b": set()}) == []


def test_no_import_runs_against_the_layers() -> None:
    # regcore imports no layer, service and worker not each other, and nothing imports the cli.
    assert layering_violations(ROOT) == []


def test_tests_benchmarks_and_examples_import_only_the_regcore_namespace() -> None:
    assert bare_layer_imports(ROOT) == []


def test_the_layers_are_symlinks_to_the_top_level_folders() -> None:
    for layer in LAYERS:
        link = ROOT / "regcore" / layer
        assert link.is_symlink(), f"regcore/{layer} must be a symlink to ../{layer}"
        assert link.resolve() == (ROOT / layer).resolve()


@pytest.mark.parametrize(
    ("module", "line", "expected"),
    [
        ("regcore/results.py", "from regcore.worker.claims import SweepClaims", "(worker)"),
        ("regcore/store/_x.py", "import regcore.service.main", "(service)"),
        ("regcore/spec/_x.py", "from .. import cli", "(cli)"),
        ("service/x.py", "from regcore.worker import training", "(worker)"),
        ("worker/x.py", "from regcore.service.app import create_app", "(service)"),
        ("worker/population/x.py", "from regcore.cli import app", "(cli)"),
        ("service/x.py", "from regcore.cli._app import app", "(cli)"),
        ("worker/x.py", "    from worker.training import train", "bare worker.training"),
    ],
)
def test_the_layering_check_finds_an_import_that_runs_up(
    tmp_path: Path, module: str, line: str, expected: str
) -> None:
    for folder in ("regcore/store", "regcore/spec", "service", "worker/population", "cli"):
        (tmp_path / folder).mkdir(parents=True, exist_ok=True)
        (tmp_path / folder / "__init__.py").write_text("")
    for layer in LAYERS:
        (tmp_path / "regcore" / layer).symlink_to(Path("..") / layer)
    source = f"def f() -> None:\n    {line.strip()}\n" if line.startswith(" ") else line + "\n"
    (tmp_path / module).write_text(source)
    found = layering_violations(tmp_path)
    assert len(found) == 1, found
    assert expected in found[0]


def test_the_cli_may_import_service_and_worker(tmp_path: Path) -> None:
    for folder in ("regcore", "service", "worker", "cli"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "__init__.py").write_text("")
    (tmp_path / "cli" / "_run.py").write_text(
        "from regcore.service.app import create_app\nfrom regcore.worker import daemon\n"
    )
    assert layering_violations(tmp_path) == []


def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    source = tmp_path / "src"
    for name in ("regcore", *LAYERS):
        shutil.copytree(
            ROOT / name,
            source / name,
            symlinks=True,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    build = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "--quiet", "-w", str(tmp_path / "wheels"), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp_path / "wheels").glob("regsweep-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        top_level = archive.read(next(n for n in names if n.endswith("/top_level.txt")))
    packages = {n.split("/")[0] for n in names if n.endswith(".py")}
    assert packages == {"regcore"}
    assert top_level.decode().split() == ["regcore"]
    for module in ("service/main.py", "worker/daemon.py", "cli/__init__.py"):
        assert f"regcore/{module}" in names


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
