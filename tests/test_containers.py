"""The container files agree with the code they run.

Dockerfile, docker-compose.yml, .env.example and .dockerignore are checked against the real
``regsweep`` command (its subcommands and options, parsed as the CLI parses them), the real
apps (the health probes are run against them), the real settings class and the package
metadata.
Nothing here needs Docker: the files are read as text and YAML, and compose's variable
interpolation is done here the way compose does it.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
import sqlalchemy as sa
import yaml

from regcore.service.main import app_from_settings, is_loopback
from regcore.settings import Settings
from tests.containers import (
    ENV_PREFIX,
    ROOT,
    Instruction,
    _exec_form,
    _image_env,
    _key_values,
    _only,
    _parse,
    _runtime_stage,
    _serving_api,
    _stages,
)
from tests.waiting import free_port

COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"


# --- Dockerfile ------------------------------------------------------------------------------


def _stage_name(stage: list[Instruction]) -> str | None:
    words = stage[0].args.split()
    return words[2] if len(words) == 3 and words[1].lower() == "as" else None


def _image_healthcheck() -> list[str] | None:
    """The image's HEALTHCHECK as a compose-style test (``["CMD", ...]``), or None."""
    args = _only(_runtime_stage(), "HEALTHCHECK").args
    if args.strip().upper() == "NONE":
        return None
    _, separator, command = args.partition(" CMD ")
    assert separator, f"HEALTHCHECK without CMD: {args!r}"
    return ["CMD", *_exec_form(command)]


def _image_command() -> list[str]:
    return _exec_form(_only(_runtime_stage(), "CMD").args)


# --- docker-compose.yml and .env.example -----------------------------------------------------

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingValueError(Exception):
    """A ``${NAME:?message}`` variable with no value: compose refuses to start."""


def _interpolate(text: str, env: dict[str, str], used: set[str]) -> str:
    """Compose's interpolation of one string (``$$``, ``${X}``, ``${X:-d}``, ``${X:?e}``, ...)."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["named"]
        used.add(name)
        value, op, arg = env.get(name), match["op"] or "", match["arg"] or ""
        missing = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if missing else str(value)
        if op.endswith("?"):
            if missing:
                raise MissingValueError(f"{name}: {arg}")
            return str(value)
        if op.endswith("+"):
            return "" if missing else arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def _interpolated(node: Any, env: dict[str, str], used: set[str]) -> Any:
    if isinstance(node, str):
        return _interpolate(node, env, used)
    if isinstance(node, list):
        return [_interpolated(item, env, used) for item in node]
    if isinstance(node, dict):
        return {key: _interpolated(value, env, used) for key, value in node.items()}
    return node


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, separator, value = line.partition("=")
            assert separator, f".env.example: expected NAME=value, but got {line!r}"
            values[name.strip()] = value.strip()
    return values


def _filled_env() -> dict[str, str]:
    """.env.example as a user fills it in: the empty (secret) values get a placeholder."""
    return {name: value or f"test-{name.lower()}" for name, value in _env_example().items()}


def _compose(env: dict[str, str] | None = None, used: set[str] | None = None) -> dict[str, Any]:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    result: dict[str, Any] = _interpolated(
        raw, _filled_env() if env is None else env, set() if used is None else used
    )
    return result


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _is_regsweep(service: dict[str, Any]) -> bool:
    """Whether the service runs the image this repository's Dockerfile builds."""
    build = service.get("build")
    if isinstance(build, str):
        build = {"context": build}
    if not isinstance(build, dict):
        return False
    return (ROOT / build.get("context", ".")).resolve() == ROOT and build.get(
        "dockerfile", "Dockerfile"
    ) == "Dockerfile"


def _regsweep_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in _services().items() if _is_regsweep(s)}


def _argv(service: dict[str, Any]) -> list[str]:
    command = service.get("command", _image_command())
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def _services_running(subcommand: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in _regsweep_services().items() if _argv(s)[:1] == [subcommand]}


def _environment(service: dict[str, Any]) -> dict[str, str]:
    """The service's environment inside its container: the image's, then compose's."""
    env = dict(_image_env()) if _is_regsweep(service) else {}
    declared = service.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.partition("=")[::2] for item in declared)
    env.update({key: str(value) for key, value in declared.items()})
    return env


def _healthcheck(service: dict[str, Any]) -> list[str] | None:
    """The probe in force for the service (its own, else its image's); None when none."""
    check = service.get("healthcheck")
    if check is None:
        return _image_healthcheck() if _is_regsweep(service) else None
    test = check.get("test")
    if check.get("disable") or test in (["NONE"], "NONE"):
        return None
    return ["CMD-SHELL", test] if isinstance(test, str) else [str(t) for t in test]


def _container_ports(service: dict[str, Any]) -> list[tuple[int, bool]]:
    """(container port, published on a host port) for each of the service's ``ports``."""
    ports: list[tuple[int, bool]] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.append((int(entry["target"]), "published" in entry))
        else:
            spec = str(entry).split("/")[0]
            ports.append((int(spec.rsplit(":", 1)[-1]), ":" in spec))
    return ports


def _named_volume_mounts(service: dict[str, Any], declared: dict[str, Any]) -> dict[str, str]:
    """Container path → named volume, for the service's mounts of top-level volumes."""
    mounts: dict[str, str] = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            source, target = entry.get("source", ""), entry["target"]
        else:
            source, _, rest = str(entry).partition(":")
            target = rest.split(":")[0]
        if source in declared:
            mounts[target] = source
    return mounts


def _seconds(duration: str | int | float) -> float:
    """A compose duration (``90s``, ``1m30s``) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|us|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


# --- the CLI ----------------------------------------------------------------------------------


# --- serving the real apps for the health probes -----------------------------------------------


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serving_dashboard(tmp_path: Path) -> Iterator[int]:
    """optuna-dashboard's app (the one ``regsweep dashboard`` runs) on a free loopback port."""
    import optuna
    import optuna_dashboard

    app = optuna_dashboard.wsgi(optuna.storages.InMemoryStorage())
    server = make_server("127.0.0.1", 0, app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="probe-dashboard", daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)


# What each listening subcommand serves, to run its container's health probe against.
SERVERS: dict[str, Callable[[Path], Any]] = {
    "serve": _serving_api,
    "dashboard": _serving_dashboard,
}

_URL = re.compile(r"https?://[^\s'\"]+")


def _probe_url(test: list[str]) -> str | None:
    found = [url for word in test[1:] for url in _URL.findall(word)]
    assert len(found) <= 1, f"a health probe should hit one URL, but got {found}"
    return found[0] if found else None


def _run_probe(test: list[str], port: int) -> int:
    """Run an exec-form ``python -c`` probe here, its URL moved to ``port``; its exit code."""
    # Exec form with python: the slim image has no curl (nor, for CMD-SHELL, a reason to).
    assert test[:2] == ["CMD", "python"], f"expected an exec-form `python -c` probe: {test}"
    url = _probe_url(test)
    assert url is not None
    moved = urlsplit(url)._replace(netloc=f"127.0.0.1:{port}").geturl()
    argv = [sys.executable, *[word.replace(url, moved) for word in test[2:]]]
    return subprocess.run(argv, capture_output=True, timeout=60, check=False).returncode


# === tests ====================================================================================

REGSWEEP_SERVICES = sorted(_regsweep_services())
LISTENING = sorted(n for n, s in _regsweep_services().items() if _argv(s)[0] in SERVERS)


@pytest.mark.parametrize("name", REGSWEEP_SERVICES)
def test_compose_commands_exist_in_cli(name: str) -> None:
    argv = _argv(_services()[name])
    path, _ = _parse(argv)
    assert path, f"service {name}: `regsweep {shlex.join(argv)}` runs no subcommand"


def test_dockerfile_runs_the_regsweep_console_script_with_a_real_default_command() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    scripts = pyproject["project"]["scripts"]
    entrypoint = _exec_form(_only(_runtime_stage(), "ENTRYPOINT").args)

    assert entrypoint == ["regsweep"]
    assert scripts.get("regsweep") == "regcore.cli:app"
    path, params = _parse(_image_command())
    assert path == ("serve",), "the image's default command should run the API"
    assert not is_loopback(params["host"]), "in a container, serve must listen on 0.0.0.0"


def test_compose_file_has_the_expected_services() -> None:
    services = _services()
    images = {name: str(s.get("image", "")) for name, s in services.items()}

    assert any(image.startswith("postgres:16") for image in images.values())
    for subcommand in ("serve", "worker", "dashboard"):
        assert _services_running(subcommand), f"no compose service runs `regsweep {subcommand}`"


@pytest.mark.parametrize("name", REGSWEEP_SERVICES)
def test_published_ports_match_the_commands_port(name: str) -> None:
    service = _services()[name]
    ports = _container_ports(service)
    if not ports:
        return
    _, params = _parse(_argv(service))

    assert "port" in params, f"service {name} publishes {ports} but its command takes no --port"
    assert [port for port, _ in ports] == [params["port"]], (
        f"service {name} publishes container port(s) {[p for p, _ in ports]}, "
        f"but its command listens on {params['port']}"
    )
    assert not is_loopback(params["host"]), (
        f"service {name} listens on {params['host']}: unreachable from outside its container; "
        "pass --host 0.0.0.0"
    )


def test_dockerfile_exposes_every_port_the_services_listen_on() -> None:
    exposed = {
        int(word.split("/")[0])
        for instruction in _runtime_stage()
        if instruction.keyword == "EXPOSE"
        for word in instruction.args.split()
    }
    listening = {_parse(_image_command())[1]["port"]}
    for service in _regsweep_services().values():
        params = _parse(_argv(service))[1]
        if "port" in params:
            listening.add(params["port"])

    assert exposed == listening


@pytest.mark.parametrize("name", REGSWEEP_SERVICES)
def test_healthchecks_probe_the_port_the_service_listens_on(name: str) -> None:
    service = _services()[name]
    test = _healthcheck(service)
    _, params = _parse(_argv(service))
    if "port" not in params:
        # The image's probe is for serve: a container that serves no HTTP must not inherit it
        # (it would be marked unhealthy for ever).
        assert test is None, f"service {name} serves no HTTP but is probed with {test}"
        return

    assert test is not None, f"service {name} listens on {params['port']} but has no healthcheck"
    url = _probe_url(test)
    assert url is not None, f"service {name}: its healthcheck {test} requests no URL"
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost"), "probes run inside the container"
    assert parts.port == params["port"], (
        f"service {name} listens on {params['port']} but its healthcheck requests {url}"
    )


@pytest.mark.parametrize("name", LISTENING)
def test_health_probes_pass_against_the_real_app(name: str, tmp_path: Path) -> None:
    service = _services()[name]
    test = _healthcheck(service)
    assert test is not None

    with SERVERS[_argv(service)[0]](tmp_path) as port:
        assert _run_probe(test, port) == 0, f"service {name}: {test} fails against the real app"
    # With nothing listening the same probe must fail, or it would call anything healthy.
    assert _run_probe(test, free_port()) != 0


def test_image_health_probe_requests_a_route_of_the_service(tmp_path: Path) -> None:
    test = _image_healthcheck()
    assert test is not None, "the image needs a HEALTHCHECK for its default command (serve)"
    url = _probe_url(test)
    assert url is not None
    app = app_from_settings(
        Settings(database_url=f"sqlite:///{tmp_path / 'routes.db'}"), host="127.0.0.1"
    )

    paths = app.openapi()["paths"]
    app.state.database.dispose()

    assert urlsplit(url).path in paths
    assert urlsplit(url).port == _parse(_image_command())[1]["port"]


def test_regsweep_variables_are_settings_fields() -> None:
    used: set[str] = set()
    services = _compose(used=used)["services"]
    names = used | set(_env_example()) | set(_image_env())
    for service in services.values():
        names |= set(_environment(service))
    regsweep_names = {name for name in names if name.startswith(ENV_PREFIX)}

    assert ENV_PREFIX == "REGSWEEP_"
    assert regsweep_names, "compose and the image set no REGSWEEP_* variable at all"
    unknown = sorted(
        name
        for name in regsweep_names
        if name.removeprefix(ENV_PREFIX).lower() not in Settings.model_fields
    )
    assert not unknown, f"not fields of regcore.settings.Settings: {unknown}"


@pytest.mark.parametrize("name", REGSWEEP_SERVICES)
def test_each_services_environment_is_valid_settings(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in _environment(_services()[name]).items():
        if key.startswith(ENV_PREFIX):
            monkeypatch.setenv(key, value)

    Settings()  # raises on a value of the wrong type or out of range


def test_env_example_declares_every_variable_the_compose_file_uses() -> None:
    used: set[str] = set()
    _compose(used=used)
    declared = set(_env_example())

    assert used - declared == set(), "used by docker-compose.yml but not in .env.example"
    assert declared - used == set(), "in .env.example but not used by docker-compose.yml"


def test_compose_refuses_to_start_without_the_secrets() -> None:
    example = _env_example()
    secrets = {name for name, value in example.items() if value == ""}

    assert {"POSTGRES_PASSWORD", "REGSWEEP_API_TOKENS"} <= secrets
    for secret in secrets:
        with pytest.raises(MissingValueError, match=secret):
            _compose(env={**_filled_env(), secret: ""})
    _compose(env=_filled_env())  # filled in, it interpolates


def test_services_share_one_postgres_database_url() -> None:
    services = _services()
    postgres = {n: s for n, s in services.items() if str(s.get("image", "")).startswith("postgres")}
    assert len(postgres) == 1
    pg_name, pg_service = next(iter(postgres.items()))
    pg_env = _environment(pg_service)
    urls = {
        name: _environment(service).get(f"{ENV_PREFIX}DATABASE_URL")
        for name, service in _regsweep_services().items()
    }

    assert None not in urls.values(), f"services without REGSWEEP_DATABASE_URL: {urls}"
    assert len(set(urls.values())) == 1, f"the services use different databases: {urls}"
    url = sa.make_url(str(next(iter(urls.values()))))
    assert url.get_backend_name() == "postgresql"
    assert url.host == pg_name
    assert (url.port or 5432) in [port for port, _ in _container_ports(pg_service)] + [5432]
    assert url.username == pg_env.get("POSTGRES_USER", "postgres")
    assert url.password == pg_env["POSTGRES_PASSWORD"]
    assert url.database == pg_env.get("POSTGRES_DB", url.username)
    sa.create_engine(url).dispose()  # its driver is installed (nothing is connected)


def test_postgres_has_a_named_volume_and_a_healthcheck() -> None:
    compose = _compose()
    declared = compose.get("volumes") or {}
    services = compose["services"]
    pg_name, postgres = next(
        (n, s) for n, s in services.items() if str(s.get("image", "")).startswith("postgres")
    )
    test = _healthcheck(postgres)

    data_dir = _environment(postgres).get("PGDATA", "/var/lib/postgresql/data")
    assert data_dir in _named_volume_mounts(postgres, declared)
    assert test is not None
    assert any("pg_isready" in word for word in test)
    for name, service in _regsweep_services().items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
        assert depends.get(pg_name, {}).get("condition") == "service_healthy", (
            f"service {name} should wait for {pg_name} to be healthy"
        )


def test_dependencies_wait_only_for_services_that_have_a_healthcheck() -> None:
    services = _services()
    for name, service in services.items():
        for dependency, how in (service.get("depends_on") or {}).items():
            if how.get("condition") == "service_healthy":
                assert _healthcheck(services[dependency]) is not None, (
                    f"{name} waits for {dependency} to be healthy, but it has no healthcheck"
                )


def test_worker_reserves_the_gpus_and_can_be_scaled() -> None:
    workers = _services_running("worker")
    assert workers

    for name, worker in workers.items():
        devices = worker["deploy"]["resources"]["reservations"]["devices"]
        assert {"driver": "nvidia", "count": "all"}.items() <= devices[0].items()
        assert "gpu" in devices[0]["capabilities"]
        assert "container_name" not in worker, f"{name}: a fixed name breaks --scale"
        assert not [p for p, published in _container_ports(worker) if published], (
            f"{name}: a fixed host port breaks --scale"
        )
        _, params = _parse(_argv(worker))
        assert params.get("gpus") == "all" or str(params.get("device")).startswith("cuda")


def test_worker_containers_stop_after_their_trials_finish() -> None:
    for name, worker in _services_running("worker").items():
        env = _environment(worker)
        stop_signal = worker.get("stop_signal") or next(
            (i.args for i in _runtime_stage() if i.keyword == "STOPSIGNAL"), "SIGTERM"
        )
        grace_s = float(env.get(f"{ENV_PREFIX}GRACE_S", Settings.model_fields["grace_s"].default))

        # `worker --gpus all` is a parent waiting on one process per GPU, and docker signals
        # PID 1 alone: tini (init: true) with TINI_KILL_PROCESS_GROUP signals the whole group,
        # and SIGINT is the signal on which the parent waits for its workers to finish.
        if _parse(_argv(worker))[1].get("gpus"):
            assert stop_signal == "SIGINT", f"{name}: stop with SIGINT, not {stop_signal}"
            assert worker.get("init") is True, f"{name}: needs init: true (tini as PID 1)"
            assert "TINI_KILL_PROCESS_GROUP" in env
        else:
            assert stop_signal in ("SIGINT", "SIGTERM")
        # The running trial has grace_s; a training function that ignores the stop is killed
        # grace_s later; then the worker deregisters.
        assert _seconds(worker.get("stop_grace_period", "10s")) >= 2 * grace_s + 30, (
            f"{name}: docker kills the worker before its running trial's grace period ends"
        )


def test_artifact_and_data_volumes_are_named_and_shared() -> None:
    compose = _compose()
    declared = compose.get("volumes") or {}
    artifact_volumes = set()
    for name, service in {**_services_running("worker"), **_services_running("dashboard")}.items():
        artifact_dir = _environment(service)[f"{ENV_PREFIX}ARTIFACT_DIR"]
        mounts = _named_volume_mounts(service, declared)
        assert artifact_dir in mounts, f"{name}: {artifact_dir} is not on a named volume"
        artifact_volumes.add(mounts[artifact_dir])
    for name, service in _services_running("worker").items():
        data_dir = _environment(service)[f"{ENV_PREFIX}DATA_DIR"]
        assert data_dir in _named_volume_mounts(service, declared), f"{name}: {data_dir}"

    assert len(artifact_volumes) == 1, "worker and dashboard should share one artifact volume"


def test_dockerfile_is_multi_stage_with_a_cpu_or_cuda_variant() -> None:
    stages = _stages()
    names = [_stage_name(stage) for stage in stages]
    runtime = stages[-1]
    args = {
        key: value
        for stage in stages[:-1]
        for i in stage
        if i.keyword == "ARG"
        for key, value in _key_values(i.args).items()
    }
    builds = " ".join(i.args for stage in stages[:-1] for i in stage if i.keyword == "RUN")
    copied_from = [i.args for i in runtime if i.keyword == "COPY" and i.args.startswith("--from=")]

    assert len(stages) >= 2
    assert any(copy.startswith(f"--from={name} ") for copy in copied_from for name in names[:-1])
    assert args.get("VARIANT") == "cpu"
    assert re.search(r"\$\{?VARIANT\b", builds), "VARIANT must choose what the builder installs"
    indexes = " ".join(args.values()) + " " + builds
    assert "https://download.pytorch.org/whl/cpu" in indexes
    assert re.search(r"https://download\.pytorch\.org/whl/cu1\d\d\b", indexes)


def test_image_installs_the_extras_its_commands_need() -> None:
    """serve, dashboard and reports live in the service extra; a plain install lacks them."""
    builds = " ".join(i.args for stage in _stages()[:-1] for i in stage if i.keyword == "RUN")
    installed = re.findall(r"pip install [^&]*regsweep[^&\[]*\[([a-z,]+)\]", builds)
    assert installed, "the image must install regsweep with its extras"
    extras = {e for group in installed for e in group.split(",")}
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert "service" in extras
    assert extras <= set(optional)


def test_runtime_stage_copies_the_venv_to_the_same_path_on_the_same_python() -> None:
    stages = _stages()
    builder_image = stages[0][0].args.split()[0]
    runtime_image = stages[-1][0].args.split()[0]
    copies = [
        i.args.split() for i in stages[-1] if i.keyword == "COPY" and i.args.startswith("--from=")
    ]

    # A venv's scripts name its interpreter by absolute path, and its python links to the
    # base image's: moved or on another Python, `regsweep` would not start.
    assert builder_image == runtime_image
    assert copies
    assert all(words[-2] == words[-1] for words in copies), copies


def test_runtime_stage_runs_as_a_non_root_user() -> None:
    user = _only(_runtime_stage(), "USER").args.split(":")[0]

    assert user not in ("root", "0", "")


def test_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    sources = [
        word
        for stage in _stages()
        for i in stage
        if i.keyword == "COPY" and not i.args.startswith("--from=")
        for word in shlex.split(i.args)[:-1]
    ]
    files = [
        path.relative_to(ROOT).as_posix()
        for source in sources
        for path in ([ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    ]

    for local in (
        ".venv/bin/python",
        ".git/HEAD",
        "regcore/__pycache__/settings.cpython-312.pyc",
        "regsweep.db",
        "tests/scratch/regsweep.db",
        "tests/scratch/regsweep.db-wal",
        "bench/results/regularizers.json",
        ".mypy_cache/3.12/cache.db",
        ".ruff_cache/CACHEDIR.TAG",
        ".pytest_cache/README.md",
        ".env",
    ):
        assert _dockerignored(local, patterns), f"{local} would be sent to the build"
    assert files, f"no files under the Dockerfile's COPY sources {sources}"
    kept_out = [path for path in files if _dockerignored(path, patterns)]
    assert not kept_out, f"the Dockerfile copies these, but .dockerignore drops them: {kept_out}"


def _dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last matching pattern wins (``!`` re-includes); a match on a
    directory covers everything in it; ``**`` spans directories."""
    parts = path.split("/")
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        regex = _glob_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(candidate) for candidate in candidates):
            ignored = not negated
    return ignored


def _glob_regex(pattern: str) -> re.Pattern[str]:
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)
