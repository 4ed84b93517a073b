"""Where the result commands read: the database itself (``--storage URL``, or no service
configured), opened for one command and closed after it, or None to ask the service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import typer

from regcore.cli._app import console, settings
from regcore.cli._extras import require_driver

if TYPE_CHECKING:
    import optuna
    import sqlalchemy as sa

    from regcore.store import SweepRow

Storage = Annotated[
    str | None,
    typer.Option(
        help="Read this database instead of the service (default: REGSWEEP_DATABASE_URL)."
    ),
]


def database_url(storage: str | None) -> str | None:
    """The database to read, or None to ask the service."""
    config = settings()
    if storage is None and config.service_url is not None:
        return None
    return storage or config.database_url


@dataclass(frozen=True)
class Database:
    engine: sa.Engine
    storage: optuna.storages.RDBStorage

    def sweep(self, ref: str) -> SweepRow:
        """The sweep with id or name ``ref``; exits 2 when there is none."""
        from regcore.store import SweepNotFoundError, get_sweep, get_sweep_by_name

        for find in (get_sweep, get_sweep_by_name):
            try:
                return find(self.engine, ref)
            except SweepNotFoundError:
                pass
        console.print(
            f"[red]no sweep has the id or name {ref!r}; `regsweep status` lists them[/red]"
        )
        raise typer.Exit(2)

    def study(self, sweep: SweepRow) -> optuna.Study | None:
        import optuna

        try:
            return optuna.load_study(study_name=sweep.study_name, storage=self.storage)
        except KeyError:  # deleted behind regsweep's back
            return None


@contextmanager
def open_database(url: str, *, command: str) -> Iterator[Database]:
    require_driver(url, command=command)
    from regcore.store import create_engine_for, create_storage, sqlite_path, upgrade_database

    path = sqlite_path(url)
    if path is not None and not path.exists():
        console.print(
            f"[red]no database at {path}: run a sweep first (regsweep run SPEC), or give "
            "--storage URL (or REGSWEEP_SERVICE_URL to ask a service)[/red]"
        )
        raise typer.Exit(2)
    upgrade_database(url)  # a database an older regsweep wrote reads like a new one
    database = Database(create_engine_for(url, pool_size=1), create_storage(url, pool_size=1))
    try:
        yield database
    finally:
        database.storage.remove_session()
        database.storage.engine.dispose()
        database.engine.dispose()
