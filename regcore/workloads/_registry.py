"""Registered workloads: the built-ins, and third-party ones — :class:`Workload` classes or
training functions — from the ``regsweep.workloads`` entry-point group
(``[project.entry-points."regsweep.workloads"] my_task = "pkg.mod:MyTask"``) or from the
modules ``REGSWEEP_PLUGINS`` names (:func:`load_plugin_modules`), which register themselves
when imported.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import logging
import re
import sys
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.metadata import PackageNotFoundError, entry_points, packages_distributions, version
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from regcore.workloads._base import Workload
from regcore.workloads._function import AnyParams, TrainFn, TrainingFunction

ENTRY_POINT_GROUP = "regsweep.workloads"
OWN_DISTRIBUTION = "regsweep"  # the distribution that installs regcore (pyproject's name)
Registered = type[Workload[Any]] | TrainingFunction
_log = logging.getLogger(__name__)
_REGISTRY: dict[str, Registered] = {}
# Module → the hash of its source when it registered its first workload, that is, when it
# was imported: the code that runs, whatever the file says later (a module imported again
# is another module object, hashed anew).
_CODE: weakref.WeakKeyDictionary[ModuleType, str] = weakref.WeakKeyDictionary()
_FAILED: dict[str, str] = {}  # entry-point name → why its plug-in did not load
_MODULES: list[str] = []  # the plug-in modules imported by name, in order
_plugins_loaded = False
W = TypeVar("W", bound=Registered)


class WorkloadError(ValueError):
    """A workload name or its parameters are not acceptable; the message says what to do."""


class WorkloadPluginError(WorkloadError):
    """The plug-in that provides a workload could not be imported; the message says which
    plug-in (entry-point name and value) and why."""


def register_workload(cls: W) -> W:
    """Class decorator: make ``cls`` (or a training function) available under its name."""
    existing = _REGISTRY.get(cls.name)
    if existing is not None and existing is not cls:
        raise WorkloadError(
            f"a workload named {cls.name!r} is already registered ({where(existing)}); give "
            f"{where(cls)} another name"
        )
    _REGISTRY[cls.name] = cls
    module = sys.modules.get(_code(cls).__module__)
    if module is not None:
        _code_of(module)  # its source now, as it is imported
    return cls


def _code(item: Registered) -> Any:
    return item.function if isinstance(item, TrainingFunction) else item


def where(item: Registered) -> str:
    """``module.qualname`` of a workload class or training function."""
    code = _code(item)
    return f"{code.__module__}.{code.__qualname__}"


def provenance(item: Registered) -> str:
    """Which code ``item`` is: its distribution's name and version when installed
    (``"regsweep 0.1.0"``), else the hash of its module's source as it was imported
    (``"my_model.train sha256:…"``; the file edited since does not change what ran)."""
    module = sys.modules[_code(item).__module__]
    top = module.__name__.split(".")[0]
    # A built-in is this distribution's: no scan of every installed one (which a worker
    # paid at its first trial, ~1 s and 7 MiB).
    names = [OWN_DISTRIBUTION] if top == "regcore" else _distributions().get(top, [])
    for name in names:
        with contextlib.suppress(PackageNotFoundError):
            return f"{name} {version(name)}"
    return _code_of(module)


def _code_of(module: ModuleType) -> str:
    """The module's source hash, read once: when it registers its first workload, which
    is while (or right after) it is imported."""
    if module not in _CODE:
        path = getattr(module, "__file__", None)
        if path is None:
            _CODE[module] = f"{module.__name__} (no file)"
        else:
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
            _CODE[module] = f"{module.__name__} sha256:{digest}"
    return _CODE[module]


@functools.cache
def _distributions() -> Mapping[str, list[str]]:
    return packages_distributions()


def load_plugin_modules(modules: Sequence[str]) -> None:
    """Import the modules ``REGSWEEP_PLUGINS`` names (each registers its workloads); a module
    that cannot be imported raises :class:`WorkloadPluginError` naming it, in one line."""
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise WorkloadPluginError(
                f"REGSWEEP_PLUGINS names {name!r}, which failed to import: {reason}"
            ) from None
        if name not in _MODULES:
            _MODULES.append(name)


def plugin_modules() -> tuple[str, ...]:
    """The modules :func:`load_plugin_modules` imported (a child process imports them too)."""
    return tuple(_MODULES)


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
        if not (
            isinstance(cls, TrainingFunction)
            or (isinstance(cls, type) and issubclass(cls, Workload))
        ):
            _log.error(
                "workload plug-in %s = %s is neither a Workload subclass nor a training function",
                ep.name,
                ep.value,
            )
            continue
        try:
            register_workload(cls)
        except WorkloadError as exc:  # e.g. a plug-in reusing a built-in's name
            _log.error("workload plug-in %s = %s was not registered: %s", ep.name, ep.value, exc)


def available_workloads() -> dict[str, Registered]:
    """Every registered workload by name, built-ins and plug-ins."""
    _load_plugins()
    return dict(sorted(_REGISTRY.items()))


def get_workload(name: str) -> Registered:
    """The workload class (or training function) registered as ``name``."""
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
    if isinstance(cls, TrainingFunction):
        raise WorkloadError(
            f"{name!r} is a training function ({where(cls)}): it runs with a TrialContext, "
            "not as a built workload"
        )
    try:
        validated = cls.Params.model_validate(params or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"params.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise WorkloadError(f"workload {name!r}: {problems}") from None
    return cls(params=validated, data_dir=data_dir)


def training_function(
    *,
    name: str,
    metrics: Sequence[str],
    maximize: Iterable[str] = (),
    params: type[BaseModel] | None = None,
    split_param: str | None = None,
    warm_start: bool = False,
) -> Callable[[TrainFn], TrainingFunction]:
    """Register the decorated function as the workload ``name`` reporting ``metrics``
    (larger is better for those in ``maximize``); ``params``: a pydantic model that checks
    ``ctx.params`` (its problems show in ``regsweep validate``); ``split_param``: the key of
    ``ctx.params`` that seeds the function's train/validation split, which a confirmation
    then varies from seed to seed (as ``ctx.seed`` varies the initialization);
    ``warm_start``: the function calls :meth:`TrialContext.warm_start` on its model, so a
    path (``sampler: {name: path}``) can start each point from the last one's weights."""
    metrics, maximize = tuple(metrics), frozenset(maximize)
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}", name):
        raise ValueError(
            f"name a training function like a workload (e.g. my_cnn), but got {name!r}"
        )
    if not metrics or not all(isinstance(m, str) and m for m in metrics):
        raise ValueError(f"metrics must name what the function returns, but got {metrics!r}")
    if not maximize <= set(metrics):
        raise ValueError(f"maximize {sorted(maximize - set(metrics))} are not in metrics {metrics}")
    if params is not None and not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise TypeError(f"params must be a pydantic model class, but got {params!r}")
    if split_param is not None and params is not None and split_param not in params.model_fields:
        raise ValueError(
            f"split_param {split_param!r} is not a field of {params.__name__}; add it there "
            "(an int seed) or leave split_param out"
        )

    def register(function: TrainFn) -> TrainingFunction:
        registered = TrainingFunction(
            name=name,
            function=function,
            metrics=metrics,
            maximize=maximize,
            Params=params or AnyParams,
            split_param=split_param,
            warm_start=warm_start,
        )
        register_workload(registered)
        return registered

    return register
