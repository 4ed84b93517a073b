"""A sweep and the Optuna study behind it: created together (the study with its baseline
trial), resumed after.

The service creates sweeps when they are submitted and ``regsweep run`` creates or resumes
its own, so the study (and its user attributes) is in the database before any worker
starts: optuna-dashboard shows it at once.
"""

from __future__ import annotations

from typing import Any

import optuna
import sqlalchemy as sa

from regcore.spec import SpecError, SweepSpec, parse_spec, redact_secrets
from regcore.spec._algorithms import SAMPLERS
from regcore.spec._suggest import baseline_params, create_pruner, create_sampler
from regcore.store import (
    SweepNotFoundError,
    SweepRow,
    count_trials,
    delete_sweep,
    get_sweep_by_name,
    insert_sweep,
    reopen_sweep,
)

# What must match for a run to resume an existing study (budget and notify may change).
_RESUMABLE_KEYS = ("workload", "search_space", "optimizer", "training", "regularize", "objectives")


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
        study.set_user_attr("spec", redact_secrets(spec.to_compact_dict()))
        study.set_user_attr("workload", spec.workload.name)
        for key, value in (user_attrs or {}).items():
            study.set_user_attr(key, value)
        # λ₁ = λ₂ = 0 first, so every sweep shows what regularization bought (a path trains
        # it as its dense start, worker.path).
        if not SAMPLERS[spec.sampler.name].path:
            study.enqueue_trial(baseline_params(spec), user_attrs={"baseline": True})
        return study
    stored = stored_spec(study)
    new = spec.to_json_dict()
    changed = [k for k in _RESUMABLE_KEYS if stored.get(k) != new.get(k)]
    if changed:
        raise SpecMismatchError(
            f"a study named {spec.name!r} already exists in this storage with a different "
            f"{', '.join(changed)}; give the sweep a new name, or delete the old study"
        )
    return study


def stored_spec(study: optuna.Study) -> dict[str, Any]:
    """The spec a study was made from, every field filled: the study keeps only those that
    differ from their defaults, and one made by an earlier version lacks later fields."""
    stored: dict[str, Any] = study.user_attrs.get("spec") or {}
    try:
        return parse_spec(stored).to_json_dict()
    except SpecError:  # e.g. its workload is gone: what was stored is all there is
        return stored


def create_sweep(
    engine: sa.Engine,
    storage: optuna.storages.BaseStorage,
    spec: SweepSpec,
    *,
    owner: str | None = None,
) -> SweepRow:
    """Queue ``spec`` as a new sweep and create its study; neither exists without the other.

    Raises :class:`regcore.store.SweepNameTakenError` when a sweep has the name.
    """
    row = insert_sweep(
        engine,
        spec_json=spec.to_json_dict(),
        name=spec.name,
        priority=spec.priority,
        owner=owner,
        deadline=spec.budget.deadline,
    )
    try:
        _bind(open_study(spec, storage, user_attrs={"sweep_id": row.id}), row)
    except BaseException:
        delete_sweep(engine, row.id, force=True)  # no queued sweep without its study
        raise
    return row


def resume_sweep(
    engine: sa.Engine, storage: optuna.storages.BaseStorage, spec: SweepSpec
) -> SweepRow:
    """The sweep named ``spec.name`` queued to run (more of) it, or a new one.

    An existing sweep takes ``spec``'s budget, deadline and notify; whatever decides what its
    trials mean (workload, search space, ...) must be unchanged (:class:`SpecMismatchError`).
    A sweep that completed its budget, unraised, is returned as it is: nothing to run. A study
    without a sweep (made by an earlier version's ``regsweep run``) gets one.
    """
    try:
        row = get_sweep_by_name(engine, spec.name)
    except SweepNotFoundError:
        return create_sweep(engine, storage, spec)
    study = open_study(spec, storage)
    done = count_trials(engine, row.study_name).finished >= spec.budget.n_trials
    if row.status == "completed" and done:
        return row
    study.set_user_attr("spec", redact_secrets(spec.to_compact_dict()))
    _bind(study, row)
    return reopen_sweep(
        engine, row.id, spec_json=spec.to_json_dict(), deadline=spec.budget.deadline
    )


def _bind(study: optuna.Study, row: SweepRow) -> None:
    """Name the sweep on a study that was there before it (the dashboard shows the id)."""
    if study.user_attrs.get("sweep_id") != row.id:
        study.set_user_attr("sweep_id", row.id)
