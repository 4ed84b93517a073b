"""Optuna's RDB storage, set up for several processes on one database.

SQLite: WAL journal (readers, such as optuna-dashboard, never block the writer) and a busy
timeout instead of "database is locked". PostgreSQL: a small pool per process so many
workers do not exhaust the server, with pre-ping so a dropped connection is replaced.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from sqlalchemy import Connection
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_S = 60.0


def normalize_url(url: str) -> str:
    """``url`` as SQLAlchemy names its database: ``postgres://`` (libpq's and many hosts'
    short form, which SQLAlchemy refuses) as ``postgresql://``; any other URL unchanged.
    Every engine regsweep makes, Optuna's storage's included, reads its URL through this."""
    if url.startswith(("postgres://", "postgres+")):
        return "postgresql" + url.removeprefix("postgres")
    return url


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL, or None for other engines and memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _engine_kwargs(
    url: str, *, pool_size: int, max_overflow: int | None, application_name: str | None
) -> dict[str, Any]:
    if sqlite_path(url) is not None:
        return {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_S}}
    kwargs: dict[str, Any] = {
        "pool_size": pool_size,
        "max_overflow": pool_size if max_overflow is None else max_overflow,
        "pool_pre_ping": True,
    }
    if application_name is not None and make_url(url).get_backend_name() == "postgresql":
        # What pg_stat_activity shows for each connection: who holds the server's slots.
        kwargs["connect_args"] = {"application_name": application_name[:63]}
    return kwargs


def create_storage(
    url: str,
    *,
    pool_size: int = 2,
    max_overflow: int | None = None,
    application_name: str | None = None,
    heartbeat_s: float | None = None,
    grace_s: float | None = None,
) -> optuna.storages.RDBStorage:
    """An ``RDBStorage`` for ``url``, creating the SQLite file (in WAL mode) if needed.

    PostgreSQL: a pool of ``pool_size`` connections and ``max_overflow`` more at peaks (as
    many again by default), named ``application_name`` on the server.

    With ``heartbeat_s``, running trials are expected to beat (``record_heartbeat``) that often;
    one silent for ``grace_s`` is stale: a worker ends it and queues its retry
    (``regcore.worker.recovery.fail_stale``, which records why, as Optuna's own callback cannot).
    """
    url = normalize_url(url)
    path = sqlite_path(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT_S) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    heartbeat: dict[str, Any] = {}
    if heartbeat_s is not None:
        heartbeat = {
            "heartbeat_interval": max(1, round(heartbeat_s)),
            "grace_period": None if grace_s is None else max(1, round(grace_s)),
        }
    if pool_size < 1 or (max_overflow is not None and max_overflow < 0):
        raise ValueError(
            "pool_size must be at least 1 and max_overflow at least 0, but got "
            f"{pool_size=} and {max_overflow=}"
        )
    kwargs = _engine_kwargs(
        url, pool_size=pool_size, max_overflow=max_overflow, application_name=application_name
    )
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, **heartbeat)


def set_user_attrs(trial: optuna.Trial, attrs: Mapping[str, Any]) -> None:
    """Set ``attrs`` on the running ``trial`` in one transaction.

    ``Trial.set_user_attr`` commits each key on its own: a trial records some twenty, and
    those commits were most of regsweep's overhead per trial against bare Optuna
    (bench/throughput.py). This writes them the way ``RDBStorage.set_trial_user_attr`` does,
    key by key (an upsert, refused once the trial has finished), but commits once; other
    storages take them one by one. The trial's cached view is updated as Optuna's is.
    """
    from optuna.storages._cached_storage import _CachedStorage

    storage = trial.storage
    if isinstance(storage, _CachedStorage):  # a study's view of an RDBStorage: writes pass
        storage = storage._backend
    if not isinstance(storage, optuna.storages.RDBStorage):
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session

    with _create_scoped_session(storage.scoped_session) as session:
        for key, value in attrs.items():
            storage._set_trial_attr_without_commit(
                session, models.TrialUserAttributeModel, trial._trial_id, key, value
            )
    trial._cached_frozen_trial.user_attrs.update(attrs)


def create_study_with_attrs(
    storage: optuna.storages.BaseStorage,
    *,
    name: str,
    directions: Sequence[str],
    attrs: Mapping[str, Any],
) -> None:
    """Create the study ``name`` with its user attributes ``attrs`` in one transaction, as
    ``RDBStorage.create_new_study`` writes a study (``optuna.create_study`` then
    ``set_user_attr`` leaves a study without them between the two: one a process killed
    there leaves is no one's). Raises ``optuna.exceptions.DuplicatedStudyError``."""
    import json

    from optuna.storages._cached_storage import _CachedStorage

    kinds = [optuna.study.StudyDirection[d.upper()] for d in directions]
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if not isinstance(backend, optuna.storages.RDBStorage):
        study = optuna.create_study(study_name=name, storage=storage, directions=kinds)
        for key, value in attrs.items():
            study.set_user_attr(key, value)
        return
    from optuna.storages._rdb import models
    from optuna.storages._rdb.storage import _create_scoped_session
    from sqlalchemy.exc import IntegrityError

    try:
        with _create_scoped_session(backend.scoped_session) as session:
            session.add(
                models.StudyModel(
                    study_name=name,
                    directions=[
                        models.StudyDirectionModel(objective=i, direction=d)
                        for i, d in enumerate(kinds)
                    ],
                    user_attributes=[
                        models.StudyUserAttributeModel(key=k, value_json=json.dumps(v))
                        for k, v in attrs.items()
                    ],
                )
            )
    except IntegrityError:
        raise optuna.exceptions.DuplicatedStudyError(
            f"a study named {name!r} exists already"
        ) from None


def _rdb_backend(study: optuna.Study) -> optuna.storages.RDBStorage:
    from optuna.storages._cached_storage import _CachedStorage

    storage = study._storage
    backend = storage._backend if isinstance(storage, _CachedStorage) else storage
    if not isinstance(backend, optuna.storages.RDBStorage):
        raise TypeError(
            f"claims reserve trials in an RDB storage's tables, but study {study.study_name!r} "
            f"is in a {type(backend).__name__}; open it with create_storage()"
        )
    return backend


def reserve_trials(connection: Connection, study: optuna.Study, n: int) -> list[int]:
    """Make ``n`` trials of ``study`` RUNNING in ``connection``'s transaction, as
    ``Study.ask()`` does before any sampling: its oldest waiting trials (queued retries, the
    baseline) first, then new ones numbered under the study row's lock, as Optuna numbers
    them. Their ids; :func:`open_trial` makes each a ``Trial`` once the transaction has
    committed. Running trials use budget (:func:`regcore.store.count_trials`), so the claim
    that counts the budget on the same transaction reserves exactly what it counted."""
    from optuna.storages._rdb import models
    from sqlalchemy.orm import Session

    backend, study_id = _rdb_backend(study), study._study_id
    with Session(bind=connection) as session:
        trial_model = models.TrialModel
        waiting = (
            session.query(trial_model)
            .filter(trial_model.study_id == study_id, trial_model.state == TrialState.WAITING)
            .order_by(trial_model.number)
            .limit(n)
            .with_for_update()
            .all()
        )
        for trial in waiting:  # as RDBStorage.set_trial_state_values(RUNNING) changes them
            trial.state = TrialState.RUNNING
            trial.datetime_start = datetime.now()
        ids = [trial.trial_id for trial in waiting]
        if len(ids) < n:
            models.StudyModel.find_or_raise_by_id(study_id, session, for_update=True)
            for _ in range(n - len(ids)):
                new = backend._get_prepared_new_trial(study_id, None, session)
                session.flush()
                ids.append(new.trial_id)
        session.flush()
    return ids


def open_trial(study: optuna.Study, trial_id: int) -> optuna.Trial:
    """The reserved trial ``trial_id`` (:func:`reserve_trials`) as ``Study.ask()`` returns
    one: the study's view of its trials refreshed, so that the sampler (which runs now, off
    the claim's lock) sees every trial up to this one, and the storage's cache knows it
    (its parameters are written through the cache)."""
    study._thread_local.cached_all_trials = None  # what ask() does: sync once per trial
    study._storage.get_all_trials(study._study_id, deepcopy=False, states=(TrialState.RUNNING,))
    return optuna.Trial(study, trial_id)
