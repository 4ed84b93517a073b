"""Studies that a submission killed half-way left without their sweep: how to tell them
(the :data:`CREATED_AT` mark, with no sweep row), that they do not hold their name, and
their removal once they are older than a grace period (every worker sweeps them up).

A sweep is claimable only once its study is whole (:func:`regcore.sweeps.studies.create_sweep`
inserts its row last), so a killed submission leaves a marked study and no row."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import optuna
import sqlalchemy as sa

from regcore.store import StudyLock, SweepNotFoundError, get_sweep_by_name, studies_without_sweep

_log = logging.getLogger(__name__)

#: Study user attribute of every study made for a sweep: when (ISO 8601, UTC). A study that
#: has it but no sweep row was left by a submission killed half-way.
CREATED_AT = "created_at"


def is_half_made(study: optuna.Study) -> bool:
    """Whether ``study``, which has no sweep, is what a killed submission left: it carries
    the mark every study made for a sweep is born with (:data:`CREATED_AT`).

    Only meaningful under the name's lock, with no sweep of the name: then its submission
    is over. A study made otherwise (by an earlier version's ``regsweep run``, by hand)
    has no mark."""
    return CREATED_AT in study.user_attrs


def study_takes_name(storage: optuna.storages.BaseStorage, name: str) -> bool:
    """Whether a study that no sweep has holds ``name``: not one a killed submission left
    half-made (a new submission of the name makes it again)."""
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return False
    return not is_half_made(study)


def remove_half_made(
    engine: sa.Engine, storage: optuna.storages.BaseStorage, *, older_than_s: float
) -> list[str]:
    """Delete the studies that submissions killed half-way left without their sweep, once
    they are ``older_than_s`` old; the names removed. Studies without the mark of
    :func:`create_sweep` (an earlier version's ``regsweep run``) are never touched."""
    now, removed = datetime.now(UTC), []
    for name, stamp in studies_without_sweep(engine, marked=CREATED_AT):
        try:
            made = datetime.fromisoformat(str(stamp))
        except ValueError:
            continue
        if made.tzinfo is None or now - made < timedelta(seconds=older_than_s):
            continue
        try:
            # Its submission, if alive after all, finishes first.
            with StudyLock(engine=engine, study_name=name).hold():
                if has_sweep(engine, name) or study_takes_name(storage, name):
                    continue
                optuna.delete_study(study_name=name, storage=storage)
        except KeyError:
            continue  # removed by another worker meanwhile
        _log.warning("removed study %s: the submission that made it never finished", name)
        removed.append(name)
    return removed


def has_sweep(engine: sa.Engine, name: str) -> bool:
    """Whether a sweep named ``name`` exists."""
    try:
        get_sweep_by_name(engine, name)
    except SweepNotFoundError:
        return False
    return True
