"""Which sweeps a worker can run at all: those whose workload its registry builds."""

from __future__ import annotations

import logging

import sqlalchemy as sa

from regcore.spec import SpecError, parse_spec
from regcore.store import SweepRow, record_cannot_run

_log = logging.getLogger(__name__)


class Buildable:
    """Which sweeps a worker can run: those whose workload its registry builds (the spec
    parses). One it cannot (the plug-in missing, an older copy whose params differ) is left
    to workers that can, never ended: :meth:`accept` passes it over in the claim, and
    :meth:`tell` says why once per sweep, in the log, on the worker's row and on the sweep."""

    def __init__(self, *, engine: sa.Engine) -> None:
        self._engine = engine
        self._runs: set[str] = set()
        self._cannot: dict[str, tuple[str, str]] = {}  # sweep id → (workload, why)
        self._told: set[str] = set()

    @property
    def left(self) -> tuple[str, ...]:
        """The sweeps this worker has left to others, and said so."""
        return tuple(self._told)

    def accept(self, sweep: SweepRow) -> bool:
        if sweep.id in self._runs:
            return True
        if sweep.id in self._cannot:
            return False
        try:
            parse_spec(sweep.spec)
        except SpecError as exc:
            workload = str((sweep.spec.get("workload") or {}).get("name", "?"))
            self._cannot[sweep.id] = (workload, " ".join(str(exc).split()))
            return False
        self._runs.add(sweep.id)
        return True

    def tell(self, worker_id: str) -> None:
        """Record why this worker left the sweeps it has not said so of yet."""
        for sweep_id, (workload, reason) in self._cannot.items():
            if sweep_id in self._told:
                continue
            record_cannot_run(
                self._engine, worker_id, sweep_id=sweep_id, workload=workload, reason=reason
            )
            self._told.add(sweep_id)
            _log.warning(
                "sweep %s needs workload %r, which this worker cannot build (%s); left to "
                "workers that can",
                sweep_id,
                workload,
                reason,
            )
