"""Registered workloads: the built-ins and third-party ones from the ``regsweep.workloads``
entry-point group (``[project.entry-points."regsweep.workloads"] my_task = "pkg.mod:MyTask"``).
"""

from __future__ import annotations

import logging
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from regcore.workloads._base import Workload

ENTRY_POINT_GROUP = "regsweep.workloads"
_log = logging.getLogger(__name__)
_REGISTRY: dict[str, type[Workload[Any]]] = {}
_FAILED: dict[str, str] = {}  # entry-point name → why its plug-in did not load
_plugins_loaded = False
W = TypeVar("W", bound=type[Workload[Any]])


class WorkloadError(ValueError):
    """A workload name or its parameters are not acceptable; the message says what to do."""


class WorkloadPluginError(WorkloadError):
    """The plug-in that provides a workload could not be imported; the message says which
    plug-in (entry-point name and value) and why."""


def register_workload(cls: W) -> W:
    """Class decorator: make ``cls`` available under ``cls.name`` (returned unchanged)."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise WorkloadError(
            f"a workload named {cls.name!r} is already registered ({existing.__module__}."
            f"{existing.__qualname__}); give {cls.__qualname__} another name"
        )
    _REGISTRY[cls.name] = cls
    return cls


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
        except Exception as exc:  # a broken plug-in must not take the built-ins down with it
            # One line, no traceback: every process that reads a spec would repeat it.
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            _FAILED[ep.name] = f"workload plug-in {ep.name!r} ({ep.value}) failed to load: {reason}"
            _log.error("%s", _FAILED[ep.name])
            continue
        if not (isinstance(cls, type) and issubclass(cls, Workload)):
            _log.error("workload plug-in %s = %s is not a Workload subclass", ep.name, ep.value)
            continue
        try:
            register_workload(cls)
        except WorkloadError as exc:  # e.g. a plug-in reusing a built-in's name
            _log.error("workload plug-in %s = %s was not registered: %s", ep.name, ep.value, exc)


def available_workloads() -> dict[str, type[Workload[Any]]]:
    """Every registered workload by name, built-ins and plug-ins."""
    _load_plugins()
    return dict(sorted(_REGISTRY.items()))


def get_workload(name: str) -> type[Workload[Any]]:
    """The workload class registered as ``name``."""
    workloads = available_workloads()
    if name not in workloads and name in _FAILED:
        raise WorkloadPluginError(_FAILED[name])
    if name not in workloads:
        raise WorkloadError(
            f"unknown workload {name!r}; choose one of {', '.join(workloads)} "
            f"(or register one under the entry-point group {ENTRY_POINT_GROUP!r})"
        )
    return workloads[name]


def build_workload(
    name: str, params: dict[str, Any] | None = None, *, data_dir: Path | None = None
) -> Workload[Any]:
    """Validate ``params`` against the workload's ``Params`` and build it."""
    cls = get_workload(name)
    try:
        validated = cls.Params.model_validate(params or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"params.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise WorkloadError(f"workload {name!r}: {problems}") from None
    return cls(params=validated, data_dir=data_dir)
