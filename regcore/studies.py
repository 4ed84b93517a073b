"""The Optuna study behind a sweep: created once (with its baseline trial), resumed after.

Used by ``regsweep run`` and by the service when a sweep is submitted, so the study (and
its user attributes) is in the database before any worker starts: optuna-dashboard shows it
at once.
"""

from __future__ import annotations

from typing import Any

import optuna

from regcore.spec import SweepSpec
from regcore.spec._suggest import baseline_params, create_pruner, create_sampler

# What must match for a run to resume an existing study (budget and notify may change).
_RESUMABLE_KEYS = ("workload", "search_space", "optimizer", "training", "objectives")


class SpecMismatchError(ValueError):
    """A study of that name exists, made from a different spec."""


def open_study(
    spec: SweepSpec,
    storage: optuna.storages.BaseStorage,
    *,
    user_attrs: dict[str, Any] | None = None,
) -> optuna.Study:
    """Create the study of ``spec`` with its baseline trial queued, or load it to resume.

    ``user_attrs`` (the sweep's id, say) are set on a new study beside ``spec`` and
    ``workload``.
    """
    sampler, pruner = create_sampler(spec), create_pruner(spec)
    try:
        study = optuna.load_study(
            study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner
        )
    except KeyError:
        try:
            study = optuna.create_study(
                study_name=spec.name,
                storage=storage,
                directions=spec.directions,
                sampler=sampler,
                pruner=pruner,
            )
        except optuna.exceptions.DuplicatedStudyError:
            # Another process (the service, a worker) created it a moment ago.
            return open_study(spec, storage, user_attrs=user_attrs)
        study.set_user_attr("spec", spec.to_json_dict())
        study.set_user_attr("workload", spec.workload.name)
        for key, value in (user_attrs or {}).items():
            study.set_user_attr(key, value)
        # λ₁ = λ₂ = 0 first, so every sweep shows what regularization bought.
        study.enqueue_trial(baseline_params(spec), user_attrs={"baseline": True})
        return study
    stored = study.user_attrs.get("spec", {})
    new = spec.to_json_dict()
    changed = [k for k in _RESUMABLE_KEYS if stored.get(k) != new.get(k)]
    if changed:
        raise SpecMismatchError(
            f"a study named {spec.name!r} already exists in this storage with a different "
            f"{', '.join(changed)}; give the sweep a new name, or delete the old study"
        )
    return study
