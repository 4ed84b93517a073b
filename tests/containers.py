"""What the Dockerfile and docker-compose.yml say, read for the container and Kubernetes tests."""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
import typer.main

import regcore.cli
from regcore.service.main import app_from_settings
from regcore.settings import Settings
from tests.waiting import free_port, wait_until

ROOT = Path(__file__).resolve().parents[1]


DOCKERFILE = ROOT / "Dockerfile"


ENV_PREFIX = Settings.model_config.get("env_prefix", "")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def _dockerfile_instructions() -> list[Instruction]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    instructions: list[Instruction] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and not pending):
            continue  # comments inside a continued instruction are dropped too, as Docker does
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            keyword, _, args = line.partition(" ")
            instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def _stages() -> list[list[Instruction]]:
    """Instructions per build stage, each list starting with its FROM."""
    stages: list[list[Instruction]] = []
    for instruction in _dockerfile_instructions():
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def _runtime_stage() -> list[Instruction]:
    return _stages()[-1]


def _only(stage: list[Instruction], keyword: str) -> Instruction:
    found = [i for i in stage if i.keyword == keyword]
    assert found, f"the Dockerfile's final stage has no {keyword}"
    return found[-1]  # the last one is the one in force


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"expected the exec (JSON array) form, but got {args!r}"
    return [str(v) for v in value]


def _key_values(args: str) -> dict[str, str]:
    """ENV/ARG arguments: ``K=V K2=V2`` (or the legacy ``K V``)."""
    words = shlex.split(args)
    if words and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    return dict(word.partition("=")[::2] for word in words)


def _image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in _runtime_stage():
        if instruction.keyword == "ENV":
            env.update(_key_values(instruction.args))
    return env


def _parse(argv: list[str]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """The subcommand path ``regsweep ARGV`` runs and its parameters as the CLI parses them.

    AssertionError, saying why, when ARGV names no real subcommand or the CLI refuses its
    options (unknown option, bad value, missing argument). Typer vendors click (as
    ``typer._click``), so groups are told apart by what they can do, and the parse errors are
    caught as ``typer.TyperException``, their common base.
    """
    command: Any = typer.main.get_command(regcore.cli.app)
    args, path = list(argv), []
    while hasattr(command, "list_commands"):
        context = typer.Context(command, info_name="regsweep")
        known = ", ".join(command.list_commands(context))
        where = " ".join(["regsweep", *path])
        assert args, f"`regsweep {shlex.join(argv)}` names no subcommand of `{where}` ({known})"
        assert not args[0].startswith("-"), f"`{where}` takes no option {args[0]} ({known})"
        name = args.pop(0)
        subcommand = command.get_command(context, name)
        assert subcommand is not None, (
            f"`{name}` in `regsweep {shlex.join(argv)}` is not a subcommand of `{where}`; "
            f"it has: {known}"
        )
        command, path = subcommand, [*path, name]
    try:
        parsed = command.make_context(" ".join(["regsweep", *path]), args)
    except typer.TyperException as error:
        raise AssertionError(f"`regsweep {shlex.join(argv)}`: {error}") from None
    return tuple(path), dict(parsed.params)


@contextmanager
def _serving_api(tmp_path: Path) -> Iterator[int]:
    """The app ``regsweep serve`` builds (SQLite here, auth on), on a free loopback port."""
    import uvicorn

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'probe.db'}", api_tokens="ci:s3cret")
    app = app_from_settings(settings, host="127.0.0.1")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="probe-api", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 30, "the API to listen")
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)
