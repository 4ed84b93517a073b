"""How many threads a worker gives torch: the workers on one machine share its cores.

torch's default is every core for every process, so N workers on one machine each ran N
times too many threads (two on 2 cores: 532 s for a sweep that took 153 s at one thread
each), and the thread count changes float sums, so the same trial gave ``regsweep run`` and
the service different values. A worker's count, in order:

1. ``threads`` (``regsweep worker --threads N``, ``regsweep run --threads N``): N, always;
2. else ``OMP_NUM_THREADS`` where it is set (torch's own default follows it too);
3. else the cores this process may run on (its CPU affinity, which SLURM, taskset and
   container limits set) divided by the worker processes on this machine: those started
   together (``--workers N``, ``--gpus all``, ``regsweep run --workers N``:
   ``WorkerOptions.started_with``), or more where more live workers of the same database
   are registered from this host (workers started by hand, ``serve --with-worker``), re-read
   before a trial at most every ``every_s``.

Workers started together know their number before their first trial, so their count never
changes and their results are reproducible; a worker started by hand beside others takes
fewer threads from its first trial after the others have registered.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from regcore.store import list_workers

_log = logging.getLogger(__name__)


def available_cores() -> int:
    """The cores this process may run on (its affinity mask), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def configured_threads(threads: int | None) -> int | None:
    """``threads`` if given, else ``OMP_NUM_THREADS`` when set to a whole number ≥ 1."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be >= 1, but got {threads=}")
        return threads
    text = os.environ.get("OMP_NUM_THREADS", "").strip()
    if text.isdigit() and int(text) >= 1:
        return int(text)
    return None


def share(cores: int, workers: int) -> int:
    """Each of ``workers`` processes' share of ``cores`` (at least one thread)."""
    return max(1, cores // max(1, workers))


def live_on_host(engine: sa.Engine, *, host: str, grace_s: float) -> int:
    """Workers registered from ``host`` whose heartbeat is less than ``grace_s`` old."""
    cutoff = datetime.now(UTC) - timedelta(seconds=grace_s)
    return sum(1 for w in list_workers(engine) if w.host == host and w.last_heartbeat >= cutoff)


class ThreadShare:
    """A worker's torch threads (see the module's docstring); :meth:`apply` before a trial."""

    def __init__(
        self,
        *,
        threads: int | None,
        started_with: int,
        count_live: Callable[[], int],
        every_s: float,
        cores: int | None = None,
    ) -> None:
        if started_with < 1:
            raise ValueError(f"started_with must be >= 1, but got {started_with=}")
        self.fixed = configured_threads(threads)
        self._started_with = started_with
        self._count_live = count_live
        self._every_s = every_s
        self._cores = cores if cores is not None else available_cores()
        self._live = 0
        self._read_at = -float("inf")
        self.now = self.fixed if self.fixed is not None else share(self._cores, started_with)

    @classmethod
    def for_worker(
        cls,
        *,
        threads: int | None,
        started_with: int,
        engine: sa.Engine,
        grace_s: float,
        every_s: float,
    ) -> ThreadShare:
        """A worker's share, counting the live workers of ``engine``'s database on this host."""
        host = socket.gethostname()
        return cls(
            threads=threads,
            started_with=started_with,
            count_live=lambda: live_on_host(engine, host=host, grace_s=grace_s),
            every_s=every_s,
        )

    def apply(self) -> int:
        """Set torch's intra-op threads to this worker's share now, and return it."""
        import torch

        if self.fixed is None:
            monotonic = time.monotonic()
            if monotonic - self._read_at >= self._every_s:
                self._live = self._count_live()
                self._read_at = monotonic
            count = share(self._cores, max(self._started_with, self._live))
            if count != self.now:
                _log.info(
                    "%d workers on this host share its %d cores: %d torch threads each",
                    max(self._started_with, self._live),
                    self._cores,
                    count,
                )
            self.now = count
        if torch.get_num_threads() != self.now:
            torch.set_num_threads(self.now)
        return self.now
