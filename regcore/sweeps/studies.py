"""A sweep and the Optuna study behind it: created together (the study with its baseline
trial) and resumed after; what a killed submission left behind is
:mod:`regcore.sweeps.half_made`'s.

A sweep is claimable only once its study is whole: :func:`create_sweep` makes the study
first (its attributes, then the λ = 0 baseline) and inserts the queued row last, under the
name's lock. So the service and ``regsweep run`` have the study (and its user attributes) in
the database before any worker can see the sweep, and optuna-dashboard shows it at once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import optuna
import sqlalchemy as sa

from regcore.spec import SpecError, SweepSpec, parse_spec, redact_secrets
from regcore.spec._algorithms import SAMPLERS
from regcore.spec.suggest import baseline_params, create_pruner, create_sampler
from regcore.store import (
    BatchRow,
    StudyLock,
    SweepNameTakenError,
    SweepNotFoundError,
    SweepRow,
    confirmation_study_name,
    count_trials,
    create_study_with_attrs,
    get_sweep_by_name,
    insert_batch,
    insert_sweep,
    reopen_sweep,
)
from regcore.store._sweeps import new_id
from regcore.sweeps.half_made import CREATED_AT, has_sweep, is_half_made
from regcore.trial_kinds import BASELINE

_log = logging.getLogger(__name__)

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
    try:
        study = _load(spec, storage)
    except KeyError:
        try:
            return _create_whole(spec, storage, user_attrs)
        except optuna.exceptions.DuplicatedStudyError:
            # Another process (the service, a worker) created it a moment ago.
            return open_study(spec, storage, user_attrs=user_attrs)
    _check_resumable(study, spec)
    return study


def _load(spec: SweepSpec, storage: optuna.storages.BaseStorage) -> optuna.Study:
    sampler, pruner = create_sampler(spec), create_pruner(spec)
    return optuna.load_study(study_name=spec.name, storage=storage, sampler=sampler, pruner=pruner)


def _create_whole(
    spec: SweepSpec, storage: optuna.storages.BaseStorage, user_attrs: dict[str, Any] | None
) -> optuna.Study:
    # Born with its attributes, the mark among them: no process leaves a study without.
    attrs = {
        CREATED_AT: datetime.now(UTC).isoformat(),
        "spec": redact_secrets(spec.to_compact_dict()),
        "workload": spec.workload.name,
    }
    create_study_with_attrs(
        storage, name=spec.name, directions=spec.directions, attrs=attrs | (user_attrs or {})
    )
    study = _load(spec, storage)
    # λ₁ = λ₂ = 0 first, so every sweep shows what regularization bought (a path trains
    # it as its dense start, regcore.worker.path).
    if not SAMPLERS[spec.sampler.name].path:
        study.enqueue_trial(baseline_params(spec), user_attrs={BASELINE: True})
    return study


def _check_resumable(study: optuna.Study, spec: SweepSpec) -> None:
    stored = stored_spec(study)
    new = spec.to_json_dict()
    changed = [k for k in _RESUMABLE_KEYS if stored.get(k) != new.get(k)]
    if changed:
        raise SpecMismatchError(
            f"a study named {spec.name!r} already exists in this storage with a different "
            f"{', '.join(changed)}; give the sweep a new name, or delete the old study"
        )


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
    adopt: bool = False,
) -> SweepRow:
    """Queue ``spec`` as a new sweep, claimable only once its study is whole.

    Under the name's lock (:class:`regcore.store.StudyLock`: a killed process releases it),
    the study is made first with the sweep's id (chosen up front), its attributes and its
    baseline, and the queued row is inserted last: a worker never claims a sweep whose study
    is half-made, and a submission killed half-way leaves no sweep at all. The study such a
    submission left is made again here (or removed by :func:`remove_half_made`). A study
    made outside submissions, without a sweep (an earlier version's ``regsweep run``), is
    taken over with ``adopt`` (:class:`SpecMismatchError` unless made from the same spec),
    and refused without.

    Raises :class:`regcore.store.SweepNameTakenError` when a sweep (or such a study, without
    ``adopt``) has the name.
    """
    sweep_id = new_id()
    with StudyLock(engine=engine, study_name=spec.name).hold():
        _refuse_taken(engine, spec.name)
        made = _make_study(engine, storage, spec, sweep_id, adopt=adopt)
        try:
            return insert_sweep(
                engine,
                spec_json=spec.to_json_dict(),
                name=spec.name,
                priority=spec.priority,
                owner=owner,
                deadline=spec.budget.deadline,
                sweep_id=sweep_id,
            )
        except BaseException:
            if made:  # no study of ours without its sweep
                optuna.delete_study(study_name=spec.name, storage=storage)
            raise


def create_batch(
    engine: sa.Engine,
    storage: optuna.storages.BaseStorage,
    specs: Sequence[SweepSpec],
    *,
    name: str,
    spec_json: dict[str, Any],
    owner: str | None = None,
    deadline: datetime | None = None,
    webhook_url: str | None = None,
) -> tuple[BatchRow, list[SweepRow]]:
    """Queue the batch ``name`` of ``specs`` as :func:`create_sweep` queues one: every
    study made whole first (each under its name's lock), then the batch and its sweeps
    inserted in one transaction, so none is claimable before all are whole, and a
    submission killed half-way leaves no sweep (its studies are made again by the next, or
    removed by :func:`remove_half_made`)."""
    ids = [new_id() for _ in specs]
    made: list[str] = []
    try:
        for spec, sweep_id in zip(specs, ids, strict=True):
            with StudyLock(engine=engine, study_name=spec.name).hold():
                _refuse_taken(engine, spec.name)
                user_attrs = {"batch": name}
                _make_study(engine, storage, spec, sweep_id, adopt=False, attrs=user_attrs)
                made.append(spec.name)
        return insert_batch(
            engine,
            name=name,
            spec_json=spec_json,
            sweeps_json=[s.to_json_dict() for s in specs],
            owner=owner,
            deadline=deadline,
            webhook_url=webhook_url,
            sweep_ids=ids,
        )
    except BaseException:
        for study_name, sweep_id in zip(made, ids, strict=False):
            _delete_if_ours(storage, study_name, sweep_id)
        raise


def delete_studies(storage: optuna.storages.BaseStorage, study_name: str) -> None:
    """Delete a sweep's study and its confirmation's, whichever exist."""
    for name in (study_name, confirmation_study_name(study_name)):
        with contextlib.suppress(KeyError):
            optuna.delete_study(study_name=name, storage=storage)


def _delete_if_ours(storage: optuna.storages.BaseStorage, name: str, sweep_id: str) -> None:
    """Delete the study ``name`` if it is still the one made for ``sweep_id``."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        if study.user_attrs.get("sweep_id") == sweep_id:
            optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        pass


def _make_study(
    engine: sa.Engine,
    storage: optuna.storages.BaseStorage,
    spec: SweepSpec,
    sweep_id: str,
    *,
    adopt: bool,
    attrs: dict[str, Any] | None = None,
) -> bool:
    """The sweep's study, whole (call it under the name's lock, with no sweep of the name);
    True if it was made here, False if an existing one was adopted."""
    try:
        existing: optuna.Study | None = _load(spec, storage)
    except KeyError:
        existing = None
    if existing is not None and is_half_made(existing):
        _log.warning("%s: a submission left its study half-made; making it again", spec.name)
        optuna.delete_study(study_name=spec.name, storage=storage)
        existing = None
    if existing is None:
        try:
            _create_whole(spec, storage, {"sweep_id": sweep_id, **(attrs or {})})
        except optuna.exceptions.DuplicatedStudyError:
            # Made a moment ago by a process that takes no lock (an earlier version).
            raise SweepNameTakenError(
                f"an Optuna study named {spec.name!r} was just made by another process; "
                "give the sweep another name"
            ) from None
        return True
    if not adopt:
        raise SweepNameTakenError(
            f"an Optuna study named {spec.name!r} exists (made without a sweep, e.g. by an "
            "earlier regsweep run); give the sweep another name, or delete that study"
        )
    _check_resumable(existing, spec)
    existing.set_user_attr("sweep_id", sweep_id)
    return False


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
        return create_sweep(engine, storage, spec, adopt=True)
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


def _refuse_taken(engine: sa.Engine, name: str) -> None:
    if has_sweep(engine, name):
        raise SweepNameTakenError(
            f"a sweep named {name!r} exists; give the spec another name, or delete that sweep first"
        )
