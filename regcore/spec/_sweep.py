"""SweepSpec: one sweep, checked as a whole."""

from __future__ import annotations

import difflib
import re
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_core import InitErrorDetails

from regcore.regularizers import group_by_class
from regcore.spec._algorithms import SAMPLERS, two_objective_pruners
from regcore.spec._base import SpecModel
from regcore.spec._cross import Facts, cross_checks, facts_of_raw
from regcore.spec._defaults import default_search_filled
from regcore.spec._notify import NotifySpec
from regcore.spec._params import ParamChoices, ParamRange, check_params, grid_params
from regcore.spec._problems import problem, suggest
from regcore.spec._sections import (
    BudgetSpec,
    ConfirmSpec,
    ObjectiveSpec,
    PrunerSpec,
    SamplerSpec,
    WorkloadSpec,
    confirm_section,
)
from regcore.spec._space import Choices, Range, SearchSpace
from regcore.spec._training import (
    ExecutionSpec,
    OptimizerSpec,
    RegularizeSpec,
    TrainingSpec,
    loop_checks,
)
from regcore.workloads import TrainingFunction, get_workload

_NESTED: dict[str, type[SpecModel]] = {
    "search_space": SearchSpace,
    "optimizer": OptimizerSpec,
    "training": TrainingSpec,
    "regularize": RegularizeSpec,
    "execution": ExecutionSpec,
    "objectives": ObjectiveSpec,
    "sampler": SamplerSpec,
    "pruner": PrunerSpec,
    "budget": BudgetSpec,
    "confirm": ConfirmSpec,
    "notify": NotifySpec,
}
_HOMES: dict[str, list[str]] = {}
for _section, _model in _NESTED.items():
    for _field in _model.model_fields:
        _HOMES.setdefault(_field, []).append(_section)


def _default_objectives() -> list[ObjectiveSpec]:
    return [ObjectiveSpec(metric="val_loss", direction="minimize")]


class SweepSpec(SpecModel):
    """One sweep: a workload, the λ₁/λ₂/method space to search, and how to search it.

    Only ``name``, ``workload`` and ``search_space`` (its ``l1`` and ``l2``) are required;
    everything else has the defaults the README shows::

        name: digits-l1-vs-l2
        workload: {name: digits_mlp}
        search_space:
          l1: {low: 1.0e-6, high: 1.0e-2, log: true}
          l2: {choices: [0, 1.0e-4, 1.0e-3]}
          method: [weight_decay, proximal]

    Build one with :func:`parse_spec` or :func:`load_spec`, which turn every problem into a
    :class:`SpecError` listing them all.
    """

    name: str
    workload: WorkloadSpec
    search_space: SearchSpace
    optimizer: OptimizerSpec = Field(default_factory=OptimizerSpec)
    training: TrainingSpec = Field(default_factory=TrainingSpec)
    regularize: RegularizeSpec = Field(default_factory=RegularizeSpec)
    execution: ExecutionSpec = Field(default_factory=ExecutionSpec)
    objectives: list[ObjectiveSpec] = Field(
        default_factory=_default_objectives, min_length=1, max_length=2
    )
    sampler: SamplerSpec = Field(default_factory=SamplerSpec)
    pruner: PrunerSpec = Field(default_factory=PrunerSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    confirm: ConfirmSpec = Field(default_factory=ConfirmSpec)
    priority: int = Field(default=0, ge=-(2**31), lt=2**31)
    notify: NotifySpec = Field(default_factory=NotifySpec)

    @property
    def methods(self) -> tuple[str, ...]:
        """The implementation methods this sweep lists."""
        return self.search_space.methods

    @property
    def method_classes(self) -> dict[str, tuple[str, ...]]:
        """The regularizers this sweep compares (the classes its trials sample), each with
        the listed methods that implement it under this optimizer."""
        return group_by_class(
            self.methods, optimizer=self.optimizer.name, momentum=self.optimizer.momentum
        )

    def notes(self) -> list[str]:
        """What a user should know about a valid spec (``regsweep validate`` prints them)."""
        notes = []
        for name, methods in self.method_classes.items():
            if len(methods) > 1:
                notes.append(
                    f"{', '.join(methods)} are one regularizer ({name}) with "
                    f"{self.optimizer.name}: they train the same model, so the sweep samples "
                    f"{name} once and runs the cheapest of them (timed on the worker by a cost "
                    f"probe); list one of them to pin it"
                )
        return notes

    @property
    def directions(self) -> list[Literal["minimize", "maximize"]]:
        """Optuna's study directions, one per objective."""
        return [o.direction for o in self.objectives]

    @property
    def is_multi_objective(self) -> bool:
        return len(self.objectives) > 1

    def to_compact_dict(self) -> dict[str, Any]:
        """The fields that differ from their defaults (what the Optuna study keeps, so that
        optuna-dashboard, which cuts attributes at 1024 characters, shows it whole)."""
        return self.model_dump(mode="json", exclude_defaults=True)

    def to_json_dict(self) -> dict[str, Any]:
        """Plain JSON data that :func:`parse_spec` turns back into an equal spec."""
        return self.model_dump(mode="json")

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """The JSON Schema of a spec (pydantic's)."""
        return cls.model_json_schema()

    @classmethod
    def unknown_key_message(cls, key: str) -> str:
        if key in _HOMES:
            return f"unknown field {key!r}; it belongs under {' or '.join(_HOMES[key])}"
        if suggest(key, cls.model_fields):
            return super().unknown_key_message(key)
        close = difflib.get_close_matches(key.lower(), list(_HOMES), n=1, cutoff=0.7)
        if close:
            return f"unknown field {key!r}; did you mean {_HOMES[close[0]][0]}.{close[0]}?"
        return super().unknown_key_message(key)

    @field_validator("name")
    @classmethod
    def _study_name(cls, name: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", name):
            raise ValueError(
                "use 1–128 letters, digits, '-', '_' or '.' (it becomes the Optuna study "
                f"name), e.g. 'digits-l1-vs-l2', but got {name!r}"
            )
        return name

    @classmethod
    def _prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        if "confirm" in data:
            data = {**data, "confirm": confirm_section(data["confirm"])}
        objectives = data.get("objectives")
        if isinstance(objectives, list) and len(objectives) > 1:
            # Two objectives have a Pareto front, not one best to confirm; and Optuna's
            # pruners are single-objective: the one that works with two prunes none.
            data = {"confirm": {"seeds": 0}, **data}
            if "pruner" not in data:
                data = {**data, "pruner": {"name": two_objective_pruners()[0]}}
        return default_search_filled(data)

    def _problems(self) -> list[InitErrorDetails]:
        space = self.search_space
        facts = Facts(
            workload=self.workload.name,
            dims={"l1": space.l1, "l2": space.l2, "lr": space.lr},
            sampler=self.sampler.name,
            pruner=self.pruner.name,
            n_objectives=len(self.objectives),
            objectives=dict(enumerate(self.objectives)),
        )
        kind = get_workload(self.workload.name)
        return [
            *cross_checks(facts),
            *grid_params(self.sampler.name, space.params),
            *check_params(kind.Params, self.workload.params, space.params),
            *loop_checks(
                optimizer=self.optimizer,
                training=self.training,
                execution=self.execution,
                methods=self.methods,
                own_loop=isinstance(kind, TrainingFunction),
            ),
            *self._confirm_problems(),
            *self._path_problems(cold=isinstance(kind, TrainingFunction) and not kind.warm_start),
        ]

    def _path_problems(self, *, cold: bool) -> list[InitErrorDetails]:
        """What path mode (:mod:`regcore.sweeps.path`) needs: λ to walk, nothing else searched, and
        a loop that can start from given weights (``cold``: one that cannot)."""
        if not SAMPLERS[self.sampler.name].path:
            return []
        space = self.search_space
        details = []
        walked = [n for n in ("l1", "l2") if isinstance(getattr(space, n), Range)]
        for name in ("l1", "l2"):
            value = getattr(space, name)
            if isinstance(value, Choices) or (isinstance(value, Range) and not value.log):
                text = (
                    "a path walks λ geometrically: give a log range {low: 1.0e-6, high: "
                    "1.0e-2, log: true} or a fixed number"
                )
                details.append(problem(("search_space", name), text))
        if not walked:
            text = "a path needs l1 or l2 as a log range to walk, but both are fixed numbers"
            details.append(problem(("search_space",), text))
        searched = [v for v in space.params.values() if isinstance(v, ParamRange | ParamChoices)]
        if space.lr is not None or searched:
            text = "a path walks λ alone; fix lr and the workload's params, or use sampler tpe"
            details.append(problem(("search_space",), text))
        if cold:
            text = (
                "a path starts each point from the last one's weights, and this training "
                "function does not take them: declare it @training_function(..., "
                "warm_start=True) and call ctx.warm_start(model) after building the model, "
                "or use sampler tpe"
            )
            details.append(problem(("sampler", "name"), text))
        if self.execution.population != 1:
            text = "a path trains one point after another; set execution.population: 1"
            details.append(problem(("execution", "population"), text))
        return details

    def _confirm_problems(self) -> list[InitErrorDetails]:
        if self.confirm.enabled and self.is_multi_objective:
            text = (
                "confirm tests one objective's best against the baseline, but this sweep has "
                "two (a Pareto front has no one best); set confirm: false or remove one objective"
            )
            return [problem(("confirm",), text, self.confirm.model_dump())]
        return []

    @classmethod
    def _problems_of_invalid(cls, data: dict[str, Any]) -> list[InitErrorDetails]:
        # What the parts that are valid say about each other is worth reporting too.
        return cross_checks(facts_of_raw(data, default_objectives=len(_default_objectives())))
