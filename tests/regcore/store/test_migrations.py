"""Migrations: regsweep's tables and Optuna's, created together and kept apart."""

from __future__ import annotations

import multiprocessing
import re
from datetime import UTC, datetime

import optuna
import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from regcore.store import (
    VERSION_TABLE,
    create_engine_for,
    create_storage,
    current_revision,
    head_revision,
    upgrade_database,
)
from regcore.store._migrate import alembic_config, include_name
from regcore.store._tables import Base

OURS = {"sweeps", "workers", "batches", "outbox", VERSION_TABLE}
OPTUNAS = {"studies", "trials", "trial_values", "trial_params", "alembic_version"}


def table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def schema_diff(url: str, metadata: sa.MetaData) -> list[object]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": include_name, "compare_type": True}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_upgrade_creates_our_tables_and_optunas(empty_url: str) -> None:
    assert table_names(empty_url) == set()
    upgrade_database(empty_url)
    assert table_names(empty_url) >= OURS | OPTUNAS
    engine = create_engine_for(empty_url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    # Optuna can open the database as optuna-dashboard does, without creating anything.
    storage = optuna.storages.RDBStorage(empty_url, skip_table_creation=True)
    assert storage.get_all_studies() == []
    storage.engine.dispose()


def test_upgrade_is_idempotent(empty_url: str) -> None:
    upgrade_database(empty_url)
    create_storage(empty_url).engine.dispose()
    before = table_names(empty_url)
    upgrade_database(empty_url)
    upgrade_database(empty_url)
    assert table_names(empty_url) == before
    engine = create_engine_for(empty_url)
    with engine.connect() as connection:
        versions = connection.execute(sa.text(f"SELECT * FROM {VERSION_TABLE}")).all()
    engine.dispose()
    assert versions == [(head_revision(),)]


def test_migrated_schema_matches_the_models(empty_url: str) -> None:
    upgrade_database(empty_url)
    assert schema_diff(empty_url, Base.metadata) == []
    # The comparison does see our tables: a column the migrations lack shows up.
    changed = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["sweeps"].append_column(sa.Column("extra", sa.Integer))
    assert [d[0] for d in schema_diff(empty_url, changed)] == ["add_column"]  # type: ignore[index]


def _upgrade(url: str) -> None:
    upgrade_database(url)


def test_concurrent_upgrades_from_processes_all_succeed(empty_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_upgrade, args=(empty_url,)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
    assert [p.exitcode for p in processes] == [0, 0, 0]
    assert table_names(empty_url) >= OURS | OPTUNAS


def _migrate(url: str, revision: str, *, down: bool = False) -> None:
    engine = create_engine_for(url)
    try:
        with engine.connect() as connection, connection.begin():
            step = command.downgrade if down else command.upgrade
            step(alembic_config(connection=connection), revision)
    finally:
        engine.dispose()


def test_the_outbox_comes_with_0004_onto_a_database_with_sweeps(empty_url: str) -> None:
    _migrate(empty_url, "0003")
    engine = create_engine_for(empty_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO sweeps (id, name, status, spec, study_name, priority, owner,"
                " cancel_requested, created_at)"
                " VALUES ('s1', 'old', 'completed', '{}', 'old', 0, NULL, false, :now)"
            ),
            {"now": datetime.now(UTC).replace(tzinfo=None)},
        )
    assert "outbox" not in table_names(empty_url)

    upgrade_database(empty_url)  # 0003 to head, as a worker's start does
    assert current_revision(engine) == head_revision()
    assert schema_diff(empty_url, Base.metadata) == []
    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT name FROM sweeps")).scalars().all() == ["old"]
        assert connection.execute(sa.text("SELECT count(*) FROM outbox")).scalar_one() == 0

    _migrate(empty_url, "0003", down=True)
    assert "outbox" not in table_names(empty_url)
    upgrade_database(empty_url)
    assert "outbox" in table_names(empty_url)
    engine.dispose()


def test_memory_sqlite_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=re.escape("sqlite:///path/to/regsweep.db")):
        create_engine_for("sqlite://")
