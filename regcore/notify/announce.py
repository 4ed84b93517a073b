"""When a sweep ends: what it found (the ``sweep.finished`` event) and, once a batch's last
sweep has ended, the ``batch.finished`` event; and their delivery.

The events are outbox rows, written by the store in the transaction that ends the sweep
(:mod:`regcore.store._outbox`): none is lost when a process dies. A :class:`Courier` (every
worker runs one, and so does the service) POSTs each at least once, with its
``idempotency_key`` in the body and the ``Idempotency-Key`` header, for receivers to drop
repeats by. Retries follow :mod:`regcore.notify.webhook`'s rules, with backoff, for up to a day.

What an event says of the study is read at its first attempt and kept, so every retry sends
the same body; a trial still running when its sweep ended (a deadline's grace period, a
cancel before the next heartbeat) counts as ``RUNNING`` there. Webhooks block nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.confirm import confirmation
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
from regcore.sweeps.export import iso_utc, jsonable
from regcore.sweeps.results import TrialRow, best_rows
from regcore.sweeps.studies import stored_spec

_log = logging.getLogger(__name__)
Opener = Callable[[], tuple[sa.Engine, optuna.storages.BaseStorage]]


def summary(storage: optuna.storages.BaseStorage, facts: Mapping[str, Any]) -> dict[str, Any]:
    """The ``sweep.finished`` event of a sweep whose end the outbox recorded as ``facts``
    (without trials if its study is gone)."""
    fields: dict[str, Any] = {
        key: facts.get(key)
        for key in ("sweep_id", "name", "status", "workload", "n_trials", "error")
    }
    try:
        study = optuna.load_study(study_name=str(facts.get("study_name")), storage=storage)
    except KeyError:
        bare = {"event": "sweep.finished", **fields, "finished_at": facts.get("finished_at")}
        return dict(jsonable(bare))
    stamp = facts.get("finished_at")
    finished_at = None if stamp is None else datetime.fromisoformat(str(stamp))
    return sweep_summary(study, **fields, finished_at=finished_at)


def render(storage: optuna.storages.BaseStorage, event: OutboxRow) -> str:
    """The JSON body of ``event``, with its ``idempotency_key``."""
    payload = event.payload
    if event.kind == "batch.finished":
        body: dict[str, Any] = {
            "event": "batch.finished",
            "name": payload.get("name"),
            "deadline": payload.get("deadline"),
            "finished_at": payload.get("finished_at"),
            "sweeps": [summary(storage, facts) for facts in payload.get("sweeps", [])],
        }
    else:
        body = summary(storage, payload)
    body["idempotency_key"] = event.key
    return json.dumps(jsonable(body), allow_nan=False)


def _row(row: TrialRow, *, multi: bool) -> dict[str, Any]:
    value: dict[str, Any] = {"values": list(row.values)} if multi else {"value": row.values[0]}
    return {
        "number": row.number,
        **value,
        "method": row.method,
        "l1": row.l1,
        "l2": row.l2,
        "lr": row.lr,
        "params": row.params,
        "sparsity": row.sparsity,
        "regularizer": row.regularizer_line(),
    }


def _decision(study: optuna.Study) -> dict[str, Any] | None:
    """What the confirmation decided (None: the sweep has none, so nothing is recommended)."""
    found = confirmation(study)
    return None if found is None else found.summary()


def sweep_summary(
    study: optuna.Study,
    *,
    sweep_id: str,
    name: str,
    status: str,
    workload: str | None = None,
    n_trials: int | None = None,
    finished_at: datetime | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """The ``sweep.finished`` event of a sweep that ended, as a JSON-ready dict.

    ``workload`` and ``n_trials`` (the budget) default to what the study's ``spec`` user
    attribute says; ``finished_at`` (a naive one is read as UTC, as the store keeps it) to
    now. One objective: ``best`` (the search's best trial, one seed), ``by_method`` (the best
    of each method), ``baseline`` (λ₁ = λ₂ = 0) and ``decision`` (the confirmation's verdict
    and recommendation; None without one), with ``pareto`` None; two: ``pareto`` (the front)
    with the others None. Non-finite floats are None. The spec itself is left out: its webhook
    URL may carry a secret.
    """
    spec = stored_spec(study)
    if workload is None:
        workload = study.user_attrs.get("workload") or spec.get("workload", {}).get("name")
    if n_trials is None:
        n_trials = spec.get("budget", {}).get("n_trials")
    counts = {state.name: 0 for state in TrialState}
    for trial in study.get_trials(deepcopy=False):
        counts[trial.state.name] += 1
    multi = len(study.directions) > 1
    rows = best_rows(study)
    best = next((_row(r, multi=False) for r in rows if r.label == "best"), None)
    baseline = next((_row(r, multi=False) for r in rows if r.label.startswith("baseline")), None)
    by_method = [
        _row(r, multi=False)
        for r in rows
        if r.label not in {"best", "pareto"} and not r.label.startswith("baseline")
    ]
    front = sorted((r for r in rows if r.label == "pareto"), key=lambda r: r.number)
    pareto = [_row(r, multi=True) for r in front]
    summary: dict[str, Any] = jsonable(
        {
            "event": "sweep.finished",
            "sweep_id": sweep_id,
            "name": name,
            "study_name": study.study_name,
            "status": status,
            "error": error,
            "workload": workload,
            "n_trials": n_trials,
            "directions": [d.name.lower() for d in study.directions],
            "trials": counts,
            "best": best,
            "by_method": None if multi else by_method,
            "baseline": baseline,
            "pareto": pareto if multi else None,
            "decision": None if multi else _decision(study),
            "finished_at": iso_utc(finished_at or datetime.now(UTC), naive_is_local=False),
        }
    )
    return summary


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
