"""Persistence: the Optuna storage and the claim lock (and, with the service, regsweep's
own tables)."""

from regcore.store._locks import StudyLock
from regcore.store._optuna import create_storage, sqlite_path

__all__ = ["StudyLock", "create_storage", "sqlite_path"]
