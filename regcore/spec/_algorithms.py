"""Optuna's samplers and pruners as a spec names them: one table per kind.

Everything else is read off these tables: the names a spec accepts (and its JSON schema
lists), the options each takes, the rules between sections (two objectives, the grid) and
the objects :func:`~regcore.spec.suggest.create_sampler` and ``create_pruner`` build. Adding
a sampler or pruner is one row here. Classes are named, not imported: reading a spec must
not import Optuna (``getattr(optuna.samplers, row.optuna_class)`` where it is needed).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from regcore.spec._sweep import SweepSpec


#: The most a whole-number sampler option may be where its row names no lower limit. Such
#: options count trials (``n_startup_trials``) or points drawn per trial, and a sweep runs at
#: most this many trials (``budget.n_trials``).
MAX_COUNT = 100_000


@dataclass(frozen=True, kw_only=True)
class Limit:
    """The most a whole-number option may be, and why (the refusal says it)."""

    most: int
    why: str


@dataclass(frozen=True, kw_only=True)
class SamplerKind:
    """A sampler: ``name`` in a spec, ``optuna_class`` in ``module`` (``optuna.samplers``,
    or regsweep's own).

    ``takes_options``: whether ``sampler.options`` may pass keywords besides the seed (they are
    checked against the class's signature). ``two_objectives``: whether it samples a
    two-objective study. ``listed_values``: it walks listed values only (grid), so every
    dimension must be a number or choices, and it is built from them. ``path``: a worker
    follows λ along a path with warm starts (:mod:`regcore.sweeps.path`) instead of sampling.
    ``opens_in_order``: its ``before_trial`` picks the point from what earlier trials took (a
    grid's unvisited points), so a claim opens its trials under the study's lock, one claim
    after another (:func:`regcore.store.claim_trials`). ``limits``: the whole-number options
    that size memory or time, each with the most it may be (any other whole-number option is
    at most :data:`MAX_COUNT`).
    """

    name: str
    optuna_class: str
    module: str = "optuna.samplers"
    takes_options: bool = True
    two_objectives: bool = True
    listed_values: bool = False
    path: bool = False
    opens_in_order: bool = False
    limits: Mapping[str, Limit] = field(default_factory=dict)

    def load(self) -> type[Any]:
        """The sampler's class (imports Optuna: call it only where a sampler is built)."""
        return getattr(importlib.import_module(self.module), self.optuna_class)  # type: ignore[no-any-return]


@dataclass(frozen=True, kw_only=True)
class FromSpec:
    """A pruner default taken from the spec: ``FromSpec(path="training.epochs")``."""

    path: str

    def read(self, spec: SweepSpec) -> Any:
        value = spec
        for part in self.path.split("."):
            value = getattr(value, part)
        return value


@dataclass(frozen=True, kw_only=True)
class PrunerKind:
    """A pruner: ``name`` in a spec, ``optuna_class`` in ``optuna.pruners``.

    ``options``: its keyword options and the least whole number each takes (``None``: a
    percentage, 0..100). ``auto``: the options that also take ``"auto"``. ``required``: the
    options a spec must give, each with an example value. ``defaults``: what the sweep passes
    unless the spec says otherwise (a number, or a :class:`FromSpec`). ``two_objectives``:
    whether it works on a two-objective study (Optuna's pruners do not; ``none`` does).
    """

    name: str
    optuna_class: str
    options: Mapping[str, int | None] = field(default_factory=dict)
    auto: frozenset[str] = frozenset()
    required: Mapping[str, Any] = field(default_factory=dict)
    defaults: Mapping[str, int | FromSpec] = field(default_factory=dict)
    two_objectives: bool = False

    def keywords(self, spec: SweepSpec, options: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for ``optuna_class``: ``options`` over the defaults."""
        filled = {
            k: v.read(spec) if isinstance(v, FromSpec) else v for k, v in self.defaults.items()
        }
        return {**filled, **options}


SAMPLERS: dict[str, SamplerKind] = {
    row.name: row
    for row in (
        SamplerKind(
            name="tpe",
            optuna_class="TPESampler",
            limits={
                "n_ei_candidates": Limit(
                    most=1024,
                    why="every suggestion scores each candidate against every past trial, so "
                    "memory grows with candidates × trials; Optuna's default is 24",
                )
            },
        ),
        SamplerKind(name="random", optuna_class="RandomSampler", takes_options=False),
        SamplerKind(
            name="grid",
            optuna_class="GridSampler",
            takes_options=False,
            listed_values=True,
            opens_in_order=True,
        ),
        SamplerKind(name="gp", optuna_class="GPSampler"),
        SamplerKind(
            name="cmaes",
            optuna_class="CmaEsSampler",
            two_objectives=False,
            limits={
                "popsize": Limit(
                    most=1000,
                    why="a generation is popsize trials, held with their covariance; the "
                    "default is 4 + 3·ln(dimensions), about 7 for three searched values",
                ),
                "inc_popsize": Limit(
                    most=10,
                    why="the population is multiplied by it at every restart; the default is 2",
                ),
            },
        ),
        SamplerKind(
            name="nsga2",
            optuna_class="NSGAIISampler",
            limits={
                "population_size": Limit(
                    most=1000,
                    why="each generation sorts its parents and children by comparing every "
                    "pair of them; the default is 50",
                )
            },
        ),
        SamplerKind(name="qmc", optuna_class="QMCSampler"),
        SamplerKind(
            name="path",
            optuna_class="PathSampler",
            module="regcore.sweeps.path",
            two_objectives=False,
            path=True,
            limits={
                "points": Limit(
                    most=1000,
                    why="each point is one trial of the path, trained after the one before; "
                    "the default is 8",
                )
            },
        ),
    )
}

# Options the median and percentile pruners share (names as in optuna.pruners).
_COMMON: dict[str, int | None] = {
    "n_startup_trials": 0,
    "n_warmup_steps": 0,
    "interval_steps": 1,
    "n_min_trials": 1,
}

PRUNERS: dict[str, PrunerKind] = {
    row.name: row
    for row in (
        PrunerKind(name="none", optuna_class="NopPruner", two_objectives=True),
        PrunerKind(name="median", optuna_class="MedianPruner", options=_COMMON),
        PrunerKind(
            name="percentile",
            optuna_class="PercentilePruner",
            options={"percentile": None, **_COMMON},
            required={"percentile": 25},
        ),
        PrunerKind(
            name="hyperband",
            optuna_class="HyperbandPruner",
            options={
                "min_resource": 1,
                "max_resource": 1,
                "reduction_factor": 2,
                "bootstrap_count": 0,
            },
            auto=frozenset({"max_resource"}),
            # Epochs are the pruner's steps: a trial's whole budget is training.epochs.
            defaults={"min_resource": 1, "max_resource": FromSpec(path="training.epochs")},
        ),
        PrunerKind(
            name="successive_halving",
            optuna_class="SuccessiveHalvingPruner",
            options={
                "min_resource": 1,
                "reduction_factor": 2,
                "min_early_stopping_rate": 0,
                "bootstrap_count": 0,
            },
            auto=frozenset({"min_resource"}),
        ),
    )
}

# The spec's name fields: pydantic's Literal (its "choose one of" message, its JSON schema
# enum), built from the tables. mypy cannot read a Literal built at run time: str for it.
if TYPE_CHECKING:
    SamplerName = str
    PrunerName = str
else:
    SamplerName = Literal[tuple(SAMPLERS)]
    PrunerName = Literal[tuple(PRUNERS)]


def range_samplers() -> list[str]:
    """The samplers that search ranges (not only listed values), in the table's order."""
    return [s.name for s in SAMPLERS.values() if not s.listed_values and not s.path]


def two_objective_samplers() -> list[str]:
    """The samplers that search ranges in a two-objective study, in the table's order."""
    return [name for name in range_samplers() if SAMPLERS[name].two_objectives]


def two_objective_pruners() -> list[str]:
    return [p.name for p in PRUNERS.values() if p.two_objectives]
