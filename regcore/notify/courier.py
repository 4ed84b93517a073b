"""Delivering the outbox's webhook events: the :class:`Courier` (every worker runs one, and so
does the service) POSTs each event at least once, with its ``idempotency_key`` in the body
and the ``Idempotency-Key`` header, for receivers to drop repeats by. Retries follow
:mod:`regcore.notify.webhook`'s rules, with backoff, for up to a day. What an event says is
rendered at its first attempt (:func:`regcore.notify.announce.render`) and kept. The
:class:`Announcer` is a worker's side of a sweep's end: it ends the sweep and wakes the
courier."""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta

import optuna
import sqlalchemy as sa

from regcore.notify.announce import Opener, render
from regcore.notify.targets import WebhookTargets
from regcore.notify.webhook import Attempt, post_webhook, where
from regcore.store import (
    OutboxRow,
    claim_outbox_event,
    finish_sweep,
    freeze_outbox_body,
    get_sweep,
    record_outbox_attempt,
)

_log = logging.getLogger(__name__)


class Courier:
    """Delivers the outbox's due events, one claim at a time, on a thread of its own (so a
    slow receiver holds up neither claims nor heartbeats).

    It looks every ``every_s`` and when woken. A claim leases the event for ``lease_s``; a
    failed attempt is retried after ``backoff_s`` doubling up to ``max_wait_s`` (or a 429's
    longer Retry-After) until the event is ``give_up_after_s`` old. ``close(drain_s=...)``
    delivers what is due for up to ``drain_s`` more, then stops; events left are any other
    deliverer's to take. With ``sweep_id`` it takes that sweep's events alone (its
    ``targets`` may not be what other sweeps' deliverers allow).
    """

    def __init__(
        self,
        *,
        database: Opener,
        targets: WebhookTargets,
        every_s: float = 5.0,
        timeout_s: float = 10.0,
        lease_s: float = 60.0,
        backoff_s: float = 2.0,
        max_wait_s: float = 600.0,
        give_up_after_s: float = 86400.0,
        sweep_id: str | None = None,
    ) -> None:
        if not 0 < timeout_s < lease_s:
            raise ValueError(f"need 0 < timeout_s < lease_s, but got {timeout_s=}, {lease_s=}")
        self._database = database
        self._sweep_id = sweep_id
        self._targets = targets
        self._every_s, self._timeout_s, self._lease_s = every_s, timeout_s, lease_s
        self._backoff_s, self._max_wait_s = backoff_s, max_wait_s
        self._give_up_after = timedelta(seconds=give_up_after_s)
        self._wake, self._stop = threading.Event(), threading.Event()
        self._until = 0.0
        self._thread = threading.Thread(target=self._run, name="regsweep-webhooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def close(self, *, drain_s: float = 0.0) -> None:
        self._until = time.monotonic() + drain_s
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=drain_s + self._timeout_s + 5)

    def deliver_due(self) -> int:
        """Attempt every due event (until closing past the drain); how many it attempted."""
        engine, storage = self._database()
        attempted = 0
        while not (self._stop.is_set() and time.monotonic() >= self._until):
            event = claim_outbox_event(engine, lease_s=self._lease_s, sweep_id=self._sweep_id)
            if event is None:
                break
            self._deliver(engine, storage, event)
            attempted += 1
        return attempted

    def _run(self) -> None:
        failing = False
        while True:
            try:
                self.deliver_due()
                failing = False
            except Exception as exc:  # the database is away: its events wait in the outbox
                if not failing:
                    _log.warning("webhook delivery paused: %s", type(exc).__name__)
                failing = True
            if self._stop.is_set():
                return
            self._wake.wait(self._every_s)
            self._wake.clear()

    def _deliver(
        self, engine: sa.Engine, storage: optuna.storages.BaseStorage, event: OutboxRow
    ) -> None:
        subject = event.sweep_id or event.batch_name
        about = f"{event.kind} of {subject} to {where(event.url) or 'an invalid URL'}"
        result = self._attempt(engine, storage, event)
        if result.delivered:
            record_outbox_attempt(engine, event.id, attempts=event.attempts, delivered=True)
            _log.info("%s delivered (key %s)", about, event.key)
            return
        now, later = datetime.now(UTC), None
        if result.retry and now - event.created_at < self._give_up_after:
            backoff_s = self._backoff_s * 2 ** min(event.attempts - 1, 32)  # 2.0 * 2**1024 raises
            wait_s = min(self._max_wait_s, max(backoff_s, result.wait_s))
            later = now + timedelta(seconds=wait_s)
            failed = (about, event.attempts, result.outcome, wait_s)
            _log.info("%s: attempt %d failed (%s); next in %.0f s", *failed)
        else:
            why = f"gave up after {event.attempts} attempts" if result.retry else "not retried"
            _log.warning("%s not delivered: %s (%s)", about, result.outcome, why)
        record_outbox_attempt(
            engine,
            event.id,
            attempts=event.attempts,
            delivered=False,
            next_attempt_at=later,
            error=result.outcome,
        )

    def _attempt(
        self, engine: sa.Engine, storage: optuna.storages.BaseStorage, event: OutboxRow
    ) -> Attempt:
        try:
            body = event.body or freeze_outbox_body(engine, event.id, render(storage, event))
        except (sa.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):
            raise  # the database is away: the lease runs out and someone tries again
        except Exception as exc:  # a bug, not the receiver's doing: logged, retried later
            return Attempt(False, True, f"could not render the event ({type(exc).__name__})")
        return post_webhook(
            event.url,
            body.encode(),
            targets=self._targets,
            key=event.key,
            timeout_s=self._timeout_s,
        )


class Announcer:
    """A worker's side of a sweep's end: end it if nobody else has (that transaction writes
    its webhook events), log it, and wake the courier to deliver them now."""

    def __init__(self, *, engine: sa.Engine, courier: Courier | None = None) -> None:
        self._engine = engine
        self._courier = courier

    def end(self, sweep_id: str, status: str, *, error: str | None = None) -> bool:
        """Give the sweep its final ``status``; True (and announced) if this call ended it."""
        ended = finish_sweep(self._engine, sweep_id, status, error=error)
        if ended:
            self.announce(sweep_id)
        return ended

    def announce(self, sweep_id: str) -> None:
        """Log a sweep's end and have its events delivered soon; never raises."""
        try:
            sweep = get_sweep(self._engine, sweep_id)
            _log.info("%s: %s", sweep.name, sweep.status)
        except Exception as exc:  # a message must never take the worker down
            _log.warning("could not announce the end of sweep %s: %s", sweep_id, exc)
        if self._courier is not None:
            self._courier.wake()
