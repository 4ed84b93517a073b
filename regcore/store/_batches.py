"""Batches in the database: many sweeps queued in one transaction, read back together, and
closed exactly once when their last sweep ends (the transaction that ends it writes the
batch's webhook event: :mod:`regcore.store._outbox`)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from regcore.store._engine import read, write
from regcore.store._outbox import close_batch
from regcore.store._rows import BatchNotFoundError, BatchRow, SweepNameTakenError, SweepRow
from regcore.store._sweeps import sweep_values
from regcore.store._tables import batches, sweeps, utcnow
from regcore.store._trials import studies, trial_user_attributes, trials


def insert_batch(
    engine: sa.Engine,
    *,
    name: str,
    spec_json: dict[str, Any],
    sweeps_json: Sequence[dict[str, Any]],
    owner: str | None = None,
    deadline: datetime | None = None,
    webhook_url: str | None = None,
    sweep_ids: Sequence[str] | None = None,
) -> tuple[BatchRow, list[SweepRow]]:
    """Queue the batch ``name`` and its sweeps (specs as JSON, each with ``name``,
    ``priority`` and ``budget.deadline``; ids ``sweep_ids``, by default new ones): all of
    them, or none when a name is taken."""
    batch = {
        "name": name,
        "spec": spec_json,
        "owner": owner,
        "deadline": deadline,
        "webhook_url": webhook_url,
        "created_at": utcnow(),
        "finished_at": None,
    }
    rows = [
        sweep_values(
            spec_json=spec,
            name=spec["name"],
            priority=int(spec.get("priority", 0)),
            owner=owner,
            deadline=_deadline_of(spec),
            batch_name=name,
            sweep_id=None if sweep_ids is None else sweep_ids[i],
        )
        for i, spec in enumerate(sweeps_json)
    ]
    wanted = [name] + [r["name"] for r in rows]
    try:
        with write(engine) as connection:
            connection.execute(sa.insert(batches).values(batch))
            if rows:
                connection.execute(sa.insert(sweeps), rows)
    except sa.exc.IntegrityError as error:
        taken = _taken(engine, name, wanted[1:])
        if taken:
            raise SweepNameTakenError(
                f"{taken} exists already; give the batch another name, or delete it first"
            ) from error
        raise
    return BatchRow.from_mapping(batch), [SweepRow.from_mapping(r) for r in rows]


def _deadline_of(spec: dict[str, Any]) -> datetime | None:
    stamp = (spec.get("budget") or {}).get("deadline")
    return None if stamp is None else datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def _taken(engine: sa.Engine, name: str, sweep_names: list[str]) -> str | None:
    with read(engine) as connection:
        if connection.execute(sa.select(batches.c.name).where(batches.c.name == name)).first():
            return f"a batch named {name!r}"
        found = connection.execute(
            sa.select(sweeps.c.name).where(sweeps.c.name.in_(sweep_names)).limit(1)
        ).scalar()
        return None if found is None else f"a sweep named {found!r}"


def get_batch(engine: sa.Engine, name: str) -> BatchRow:
    with read(engine) as connection:
        row = connection.execute(sa.select(batches).where(batches.c.name == name)).mappings()
        found = row.first()
    if found is None:
        raise BatchNotFoundError(f"no batch is named {name!r}; check the name you submitted")
    return BatchRow.from_mapping(found)


def batch_sweeps(engine: sa.Engine, name: str) -> list[SweepRow]:
    """The batch's sweeps, in the order they were submitted."""
    with read(engine) as connection:
        rows = connection.execute(
            sa.select(sweeps)
            .where(sweeps.c.batch_name == name)
            .order_by(sweeps.c.created_at, sweeps.c.name)
        )
        return [SweepRow.from_mapping(r) for r in rows.mappings()]


def close_batch_if_done(engine: sa.Engine, name: str) -> bool:
    """Mark the batch finished when none of its sweeps can run any more; True only for the
    one call that did it, which writes the batch's webhook event too.

    The sweeps' ending transactions already do this for the batch's last sweep; call it
    for a batch whose sweeps ended some other way.
    """
    with write(engine) as connection:
        lock = sa.select(batches.c.name).where(batches.c.name == name)
        connection.execute(lock.with_for_update(key_share=True)).all()
        return close_batch(connection, name)


def past_trial_seconds(engine: sa.Engine, workload: str, *, limit: int = 200) -> float | None:
    """Median wall time of recent COMPLETE trials of sweeps on ``workload``, or None."""
    with read(engine) as connection:
        names = [
            n
            for n, spec in connection.execute(
                sa.select(sweeps.c.study_name, sweeps.c.spec)
                .order_by(sweeps.c.created_at.desc())
                .limit(1000)
            )
            if (spec.get("workload") or {}).get("name") == workload
        ][:20]
        if not names:
            return None
        rows = connection.execute(
            sa.select(trial_user_attributes.c.value_json)
            .join(trials, trials.c.trial_id == trial_user_attributes.c.trial_id)
            .join(studies, studies.c.study_id == trials.c.study_id)
            .where(studies.c.study_name.in_(names), trial_user_attributes.c.key == "wall_s")
            .order_by(trials.c.trial_id.desc())
            .limit(limit)
        )
        seconds = [float(value) for (value,) in rows]
    return statistics.median(seconds) if seconds else None


def delete_batch(engine: sa.Engine, name: str) -> None:
    """Remove the batch and its sweeps' rows (their studies are the caller's to delete)."""
    with write(engine) as connection:
        # The batch's row first, as the sweeps' ending transactions lock it (no deadlock).
        connection.execute(
            sa.select(batches.c.name).where(batches.c.name == name).with_for_update()
        ).all()
        connection.execute(sa.delete(sweeps).where(sweeps.c.batch_name == name))
        connection.execute(sa.delete(batches).where(batches.c.name == name))
