"""Alembic's entry point for regsweep's tables (run by :func:`upgrade_database`).

Our version table is ``regsweep_alembic_version`` and only our tables are compared, since
Optuna's tables (and its ``alembic_version``) share the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from regcore.store._engine import create_engine_for
from regcore.store._migrate import VERSION_TABLE, include_name
from regcore.store._tables import Base


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=True,  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("regsweep's migrations run online: call upgrade_database(url)")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.config.attributes.get("url")
    if not url:
        raise RuntimeError("give alembic_config(url=...) or alembic_config(connection=...)")
    engine = create_engine_for(url, pool_size=1)
    try:
        with engine.connect() as new_connection:
            _run(new_connection)
            new_connection.commit()
    finally:
        engine.dispose()


_main()
