"""The parts of a spec besides the search space, each checked on its own (``notify``, the one
that may hold a secret, in :mod:`regcore.spec._notify`)."""

from __future__ import annotations

import inspect
import math
import re
import reprlib
import warnings
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator
from pydantic_core import InitErrorDetails

from regcore.spec._algorithms import (
    MAX_COUNT,
    PRUNERS,
    SAMPLERS,
    Limit,
    PrunerName,
    SamplerKind,
    SamplerName,
)
from regcore.spec._base import SpecModel
from regcore.spec._problems import as_details, problem, problems_error, suggest
from regcore.workloads import WorkloadError, available_workloads, get_workload
from regcore.workloads._registry import WorkloadPluginError

Direction = Literal["minimize", "maximize"]
Seed = Annotated[int, Field(ge=0, lt=2**32)]


class WorkloadSpec(SpecModel):
    """A registered workload and its parameters: ``{name: digits_mlp, params: {hidden: [128]}}``.

    ``params`` are validated by the workload's ``Params`` model and stored with its defaults
    filled in, so a stored spec says exactly what ran.
    """

    name: str
    params: dict[str, Any] = Field(default_factory=dict, validate_default=True)

    @field_validator("name")
    @classmethod
    def _registered(cls, name: str) -> str:
        try:
            get_workload(name)
        except WorkloadPluginError as exc:  # installed, but its code did not import
            raise ValueError(str(exc)) from None
        except WorkloadError as exc:
            raise ValueError(f"{exc}{suggest(name, available_workloads())}") from None
        return name

    @field_validator("params")
    @classmethod
    def _params(cls, params: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        name = info.data.get("name")
        if name is None:  # the name's own problem is reported; nothing to check against
            return params
        model = get_workload(name).Params
        try:
            return model.model_validate(params).model_dump(mode="json")
        except ValidationError as exc:
            raise problems_error(as_details(exc, fields=model.model_fields), "params") from None


# Measured by the trial runner for every workload; larger is better for the first two.
RUNNER_METRICS: tuple[str, ...] = (
    "sparsity",
    "sparsity_1e-3",
    "l1_norm",
    "l2_norm",
    "train_loss",
    "step_time_ms",
)
RUNNER_MAXIMIZE = frozenset({"sparsity", "sparsity_1e-3"})


class ObjectiveSpec(SpecModel):
    """A metric to optimize: ``{metric: val_loss, direction: minimize}``. The metric is one
    the workload reports or one of :data:`RUNNER_METRICS`."""

    metric: str = Field(min_length=1)
    direction: Direction


class SamplerSpec(SpecModel):
    """Optuna's sampler by short name, its seed and extra keyword ``options``:
    ``{name: tpe, seed: 0, options: {n_startup_trials: 10}}``.

    ``grid`` needs every dimension of the search space discrete (numbers or choices).
    ``cmaes``, ``gp`` and ``qmc`` accept a list of methods, but sample the categorical
    ``method`` independently (Optuna's fallback), so they shine with one method.

    Options are checked against the sampler's signature: a whole number is at most its
    row's limit (:class:`~regcore.spec._algorithms.Limit`) or :data:`MAX_COUNT`, since such
    options count trials or points drawn per trial, and memory and time grow with them; a
    number is finite; an option that takes a Python object or function is refused.
    """

    name: SamplerName = "tpe"
    seed: Seed | None = 0
    options: dict[str, Any] = Field(default_factory=dict)

    def _problems(self) -> list[InitErrorDetails]:
        row = SAMPLERS[self.name]
        details = []
        for key, value in self.options.items():
            loc = ("options", key)
            if key == "seed":
                details.append(problem(loc, "set the seed as sampler.seed instead", value))
            elif key == "search_space":
                text = "the search space comes from search_space; remove it"
                details.append(problem(loc, text, value))
            elif not row.takes_options:
                text = f"the {self.name} sampler takes no options besides seed; remove it"
                details.append(problem(loc, text, value))
            elif key not in (known := _sampler_keywords(self.name)):
                text = f"{row.optuna_class} takes no option {key!r}" + suggest(key, known)
                details.append(problem(loc, text, value))
            elif (kind := _kind_of(known[key])) in ("function", "object"):
                what = "function" if kind == "function" else f"object ({known[key]})"
                text = f"takes a Python {what}, which a spec cannot name; remove {key!r}"
                details.append(problem(loc, text, value))
            elif kind is not None and not _is(value, kind):
                text = f"must be {kind} (Optuna: {known[key]}), but got {reprlib.repr(value)}"
                details.append(problem(loc, text, value))
            elif (refusal := _out_of_bounds(row, key, value)) is not None:
                details.append(problem(loc, refusal, value))
        if not details and self.options and row.takes_options:
            details += self._refused_by_optuna()
        return details

    def _refused_by_optuna(self) -> list[InitErrorDetails]:
        """Build the sampler once: Optuna checks the options' values (types, ranges)."""
        sampler = SAMPLERS[self.name].load()  # here: reading a spec imports no Optuna before
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # ExperimentalWarning for some options
                sampler(seed=self.seed, **self.options)
        except (TypeError, ValueError) as exc:
            text = f"{sampler.__name__} refused these options ({exc}); fix them"
            return [problem(("options",), text, self.options)]
        return []


def _sampler_keywords(name: str) -> dict[str, str]:
    """The keyword options of the sampler ``name`` and their annotations, as text (seed and
    search_space are the spec's own)."""
    sampler = SAMPLERS[name].load()
    parameters = inspect.signature(sampler).parameters
    return {key: str(p.annotation) for key, p in parameters.items() if key not in _OWN_KEYWORDS}


_OWN_KEYWORDS = {"seed", "search_space"}
_KINDS: dict[str, type] = {"bool": bool, "int": int, "float": float, "str": str}


def _kind_of(annotation: str) -> str | None:
    """What an option takes, read off its annotation: ``'bool | None'`` → ``"bool"``;
    ``"function"`` for a Callable and ``"object"`` for a class (``BaseSampler``,
    ``list[FrozenTrial]``), which no spec can give; None where it does not say (``dict[str,
    Any]``: plain data, checked by Optuna)."""
    if "Callable" in annotation:
        return "function"
    if set(re.findall(r"\b[A-Z]\w*", annotation)) - {"Any", "None"}:
        return "object"
    names = [n.strip() for n in annotation.split("|") if n.strip() != "None"]
    return names[0] if len(names) == 1 and names[0] in _KINDS else None


def _out_of_bounds(row: SamplerKind, key: str, value: Any) -> str | None:
    """Why a number ``value`` of option ``key`` is refused, or None: a whole number over its
    limit (the row's, else :data:`MAX_COUNT`), or a number that is not finite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, but got {value!r}"
    if not isinstance(value, int):
        return None
    limit = row.limits.get(key, Limit(most=MAX_COUNT, why=_COUNTS))
    if value > limit.most:
        return f"must be at most {limit.most} ({limit.why}), but got {value}"
    return None


_COUNTS = "it counts trials or points per trial; a sweep runs at most that many trials"


def _is(value: Any, kind: str) -> bool:
    if kind == "bool" or isinstance(value, bool):  # JSON's true is no number, 1 no boolean
        return isinstance(value, bool) and kind == "bool"
    if kind == "float":
        return isinstance(value, int | float)
    return isinstance(value, _KINDS[kind])


class PrunerSpec(SpecModel):
    """Optuna's pruner by short name and its keyword ``options``:
    ``{name: percentile, options: {percentile: 25, n_warmup_steps: 2}}``. Pruners are
    single-objective; a two-objective spec gets ``none`` unless it says otherwise.
    """

    name: PrunerName = "hyperband"
    options: dict[str, Any] = Field(default_factory=dict)

    def _problems(self) -> list[InitErrorDetails]:
        row = PRUNERS[self.name]
        known = row.options
        details = []
        for key, value in self.options.items():
            loc = ("options", key)
            if key not in known:
                names = ", ".join(known) or "none"
                text = (
                    f"{self.name} takes no option {key!r}{suggest(key, known)} (options: {names})"
                )
                details.append(problem(loc, text, value))
            elif known[key] is None:  # a percentage
                number = isinstance(value, int | float) and not isinstance(value, bool)
                if not (number and 0 <= value <= 100):
                    details.append(problem(loc, f"must be 0..100, but got {value!r}", value))
            elif not (value == "auto" and key in row.auto):
                least = known[key] or 0
                whole = isinstance(value, int) and not isinstance(value, bool)
                if not (whole and value >= least):
                    auto = " or 'auto'" if key in row.auto else ""
                    text = f"must be a whole number ≥ {least}{auto}, but got {value!r}"
                    details.append(problem(loc, text, value))
        for key, example in row.required.items():
            if key not in self.options:
                text = f"the {self.name} pruner needs options.{key}, e.g. {{{key}: {example}}}"
                details.append(problem(("options",), text, self.options))
        return details


class BudgetSpec(SpecModel):
    """When a sweep stops: after ``n_trials`` finished trials (1..100000), ``timeout_s``
    seconds of running, or at ``deadline`` (ISO-8601 with a UTC offset), whichever comes
    first: ``{n_trials: 60, timeout_s: null, deadline: 2030-01-31T06:00:00Z}``.
    """

    n_trials: int = Field(default=60, ge=1, le=100_000)
    timeout_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    deadline: datetime | None = Field(default=None, strict=False)  # ISO 8601 text too

    @field_validator("deadline")
    @classmethod
    def _aware(cls, deadline: datetime | None) -> datetime | None:
        if deadline is not None and deadline.utcoffset() is None:
            stamp = deadline.isoformat()
            raise ValueError(
                f"give the deadline a UTC offset, e.g. {stamp}Z or {stamp}+02:00, but got {stamp}"
            )
        return deadline


class ConfirmSpec(SpecModel):
    """After the search, train the ``top`` best settings and each one's λ = 0 twin (its other
    searched values kept) again with ``seeds`` new seeds each, to tell a real gain from noise:
    ``{seeds: 5, top: 3}``, the default. ``confirm: false`` (or ``seeds: 0``) skips it; then
    nothing is recommended, and the search's best is shown as unconfirmed.

    These trials use no budget and live in a study of their own. The result is each
    candidate's per-seed gain over its twin, tested by a one-sided paired t-test at 5 %,
    Holm-corrected over the candidates. A seed fixes the initialization, the data order and,
    with ``vary_split`` (default) where the workload names a split parameter, the data split.
    """

    seeds: int = Field(default=5, ge=0, le=100)
    top: int = Field(default=3, ge=1, le=20)
    vary_split: bool = True

    @property
    def enabled(self) -> bool:
        return self.seeds > 0

    def _problems(self) -> list[InitErrorDetails]:
        if self.seeds == 1:
            text = "one seed gives no spread to test against; use seeds: 2 or more (5 is usual)"
            return [problem(("seeds",), text, self.seeds)]
        return []


def confirm_section(value: Any) -> Any:
    """``confirm: false`` / ``true``: no confirmation / the default one."""
    if value is False:
        return {"seeds": 0}
    if value is True:
        return {}
    return value
