"""Prometheus metrics: request latency by route, claim latency, and the queue's state.

Each app has its own registry (two apps in one process, as in tests, never collide). The
queue's numbers are read from the database when Prometheus scrapes, so they are right
whichever process changed them; request latency is this process's own. Claim latency comes
from the workers (other processes, other machines) through the database: each heartbeat
writes the worker's claim count and seconds, exported as a summary per live worker.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from regcore.service.deps import Database
from regcore.store import RUNNABLE_STATUSES, SWEEP_STATUSES, count_trials, list_sweeps, list_workers

_log = logging.getLogger(__name__)
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class _QueueCollector(Collector):
    """Sweeps by status, trials by state and queue depth, read at scrape time."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def _families(
        self,
    ) -> tuple[
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        GaugeMetricFamily,
        SummaryMetricFamily,
    ]:
        return (
            GaugeMetricFamily("regsweep_database_up", "1 if the last scrape read the database"),
            GaugeMetricFamily("regsweep_sweeps", "Sweeps by status", labels=["status"]),
            GaugeMetricFamily("regsweep_trials", "Trials by Optuna state", labels=["state"]),
            GaugeMetricFamily(
                "regsweep_queue_depth", "Sweeps whose trials workers may still claim"
            ),
            SummaryMetricFamily(
                "regsweep_claim_duration_seconds",
                "Time workers took to claim their trials (sweep and trial), per live worker",
                labels=["worker", "host"],
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()  # so registering does not query the database

    def collect(self) -> Iterable[Metric]:
        up, sweeps, trials, depth, claims = self._families()
        try:
            engine = self.database.engine
            by_status = {s: list_sweeps(engine, status=s, limit=0)[1] for s in SWEEP_STATUSES}
            by_state = count_trials(engine).by_state
            workers = list_workers(engine)
        except Exception as exc:  # a scrape must not fail: say the database is down
            _log.warning("metrics: cannot read the database: %s", type(exc).__name__)
            up.add_metric([], 0)
            return (up,)
        up.add_metric([], 1)
        for status, n in by_status.items():
            sweeps.add_metric([status], n)
        for state, n in by_state.items():
            trials.add_metric([state], n)
        depth.add_metric([], sum(by_status[s] for s in RUNNABLE_STATUSES))
        for worker in workers:  # each worker's heartbeat writes its totals
            claims.add_metric([worker.id, worker.host], worker.claims, worker.claim_seconds)
        return up, sweeps, trials, depth, claims


class ServiceMetrics:
    """The app's registry and the histograms code observes into."""

    def __init__(self, *, database: Database) -> None:
        self.registry = CollectorRegistry()
        self.request_latency = Histogram(
            "regsweep_http_request_duration_seconds",
            "Time to answer an API request, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.registry.register(_QueueCollector(database))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class LatencyMiddleware:
    """Times every request under its route template (``/v1/sweeps/{sweep_id}``), so the
    label set stays small whatever paths clients send."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics) -> None:
        self.app = app
        self.histogram = metrics.request_latency

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "<unmatched>"
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            elapsed = time.perf_counter() - start
            self.histogram.labels(method, route, str(status)).observe(elapsed)
