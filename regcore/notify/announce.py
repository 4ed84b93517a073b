"""What a sweep's end says: what it found (the ``sweep.finished`` event) and, once a batch's
last sweep has ended, the ``batch.finished`` event; their delivery is the
:class:`~regcore.notify.courier.Courier`'s, and a worker's side of an end the
:class:`~regcore.notify.courier.Announcer`'s.

The events are outbox rows, written by the store in the transaction that ends the sweep
(:mod:`regcore.store._outbox`): none is lost when a process dies.

What an event says of the study is read at its first attempt and kept, so every retry sends
the same body; a trial still running when its sweep ended (a deadline's grace period, a
cancel before the next heartbeat) counts as ``RUNNING`` there. Webhooks block nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import optuna
import sqlalchemy as sa
from optuna.trial import TrialState

from regcore.confirm import confirmation
from regcore.store import OutboxRow
from regcore.sweeps.export import iso_utc, jsonable
from regcore.sweeps.results import TrialRow, best_rows
from regcore.sweeps.studies import stored_spec

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
