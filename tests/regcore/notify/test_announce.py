"""The ``sweep.finished`` event: what an ended sweep found, as its webhook receives it."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from regcore.notify.announce import render, summary, sweep_summary
from regcore.notify.targets import WebhookTargets
from regcore.notify.webhook import send_webhook
from regcore.store import OutboxRow
from regcore.sweeps.results import best_rows
from tests.webhooks import receiving

optuna.logging.set_verbosity(optuna.logging.WARNING)

DISTRIBUTIONS = {
    "method": CategoricalDistribution(["loss", "proximal"]),
    "l1": FloatDistribution(1e-6, 1e-2, log=True),
}


def runner_trial(
    value: float | list[float] | None,
    *,
    method: str,
    l1: float,
    state: TrialState = TrialState.COMPLETE,
    **attrs: Any,
) -> optuna.trial.FrozenTrial:
    """A trial with the user attributes the worker's runner records."""
    values = value if isinstance(value, list) else None
    return create_trial(
        state=state,
        value=None if isinstance(value, list) else value,
        values=values,
        # A log range cannot hold 0: the baseline's parameter is the low end, as the runner's.
        params={"method": method, "l1": max(l1, 1e-6)},
        distributions=DISTRIBUTIONS,
        user_attrs={"method": method, "l1": l1, "l2": 0.0, "lr": 1e-3, **attrs},
    )


def single_objective_study(storage: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    study = optuna.create_study(study_name="summary-test", storage=storage)
    study.set_user_attr("workload", "sparse_regression")
    study.set_user_attr("spec", {"budget": {"n_trials": 6}, "notify": {"webhook_url": "x"}})
    study.add_trial(runner_trial(0.9, method="loss", l1=0.0, baseline=True, sparsity=0.0))
    study.add_trial(runner_trial(0.3, method="loss", l1=1e-4, sparsity=0.1))
    study.add_trial(runner_trial(0.2, method="proximal", l1=1e-3, sparsity=0.7))
    study.add_trial(
        runner_trial(
            None,
            method="proximal",
            l1=1e-2,
            state=TrialState.FAIL,
            val_loss=math.inf,
            fail_reason="diverged: objective values [inf]",
        )
    )
    study.add_trial(runner_trial(None, method="loss", l1=1e-5, state=TrialState.PRUNED))
    return study


def test_summary_is_valid_json_with_the_best_regularizer_line() -> None:
    study = single_objective_study()
    finished = datetime(2025, 3, 1, 6, 30, tzinfo=UTC)
    summary = sweep_summary(
        study, sweep_id="abc123", name="nightly", status="completed", finished_at=finished
    )
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text) == summary
    assert summary["event"] == "sweep.finished"
    assert (summary["sweep_id"], summary["name"], summary["status"]) == (
        "abc123",
        "nightly",
        "completed",
    )
    assert summary["workload"] == "sparse_regression"
    assert summary["n_trials"] == 6
    assert summary["trials"]["COMPLETE"] == 3
    assert summary["trials"]["FAIL"] == 1
    assert summary["trials"]["PRUNED"] == 1
    assert summary["trials"]["RUNNING"] == 0
    best = summary["best"]
    assert best["number"] == 2
    assert best["value"] == pytest.approx(0.2)
    assert (best["method"], best["l1"], best["l2"], best["lr"]) == ("proximal", 1e-3, 0.0, 1e-3)
    assert best["regularizer"] == 'Regularizer(model, l1=0.001, l2=0, method="proximal")'
    assert best["regularizer"] == best_rows(study)[0].regularizer_line()
    assert [r["method"] for r in summary["by_method"]] == ["loss", "proximal"]
    assert summary["by_method"][0]["number"] == 1
    assert summary["baseline"]["number"] == 0
    assert summary["pareto"] is None
    assert summary["finished_at"] == "2025-03-01T06:30:00Z"
    assert "webhook_url" not in text  # the spec (and its secret URL) stays out


def test_summary_turns_non_finite_floats_into_null() -> None:
    study = optuna.create_study()
    study.add_trial(create_trial(value=0.5, user_attrs={"method": "loss", "l1": 0.1}))
    summary = sweep_summary(study, sweep_id="s", name="n", status="completed")
    assert summary["best"]["lr"] is None  # unknown learning rate: nan
    json.dumps(summary, allow_nan=False)


def test_summary_of_a_two_objective_sweep_lists_the_pareto_front() -> None:
    study = optuna.create_study(directions=["minimize", "maximize"])
    study.add_trial(runner_trial([0.1, 0.1], method="loss", l1=1e-4))
    study.add_trial(runner_trial([0.2, 0.5], method="proximal", l1=1e-3))
    study.add_trial(runner_trial([0.4, 0.05], method="loss", l1=1e-5))  # dominated
    summary = sweep_summary(
        study, sweep_id="s", name="two", status="completed", workload="digits_mlp", n_trials=3
    )
    json.dumps(summary, allow_nan=False)
    assert summary["directions"] == ["minimize", "maximize"]
    assert summary["best"] is None
    assert summary["by_method"] is None
    assert [p["number"] for p in summary["pareto"]] == [0, 1]
    assert summary["pareto"][1]["values"] == [0.2, 0.5]
    assert summary["pareto"][1]["regularizer"].startswith("Regularizer(model, l1=0.001")


def test_summary_of_a_sweep_without_complete_trials_has_no_best() -> None:
    study = optuna.create_study()
    study.add_trial(create_trial(state=TrialState.FAIL, user_attrs={"fail_reason": "x"}))
    summary = sweep_summary(study, sweep_id="s", name="n", status="failed", error="boom")
    assert summary["best"] is None
    assert summary["by_method"] == []
    assert summary["error"] == "boom"
    assert summary["workload"] is None
    assert summary["n_trials"] is None


def test_summary_is_delivered_by_webhook() -> None:
    study = single_objective_study()
    summary = sweep_summary(study, sweep_id="abc", name="nightly", status="completed")
    with receiving() as receiver:
        loopback = WebhookTargets(["127.0.0.1"])  # refused unless allowed
        assert send_webhook(receiver.url, summary, backoff_s=0.01, targets=loopback) is True
    delivered = receiver.bodies[0]
    assert delivered["best"]["regularizer"] == best_rows(study)[0].regularizer_line()


FACTS = {
    "sweep_id": "abc",
    "name": "nightly",
    "study_name": "summary-test",
    "status": "deadline_reached",
    "workload": None,
    "n_trials": None,
    "finished_at": "2025-03-01T06:30:00Z",
    "error": None,
}


def event(kind: str, payload: dict[str, Any]) -> OutboxRow:
    now = datetime.now(UTC)
    return OutboxRow(
        id=1,
        key="0123456789abcdef0123456789abcdef",
        kind=kind,
        sweep_id="abc" if kind == "sweep.finished" else None,
        batch_name="tonight" if kind == "batch.finished" else None,
        url="https://hooks.example.com/SECRET",
        payload=payload,
        body=None,
        created_at=now,
        attempts=1,
        next_attempt_at=now,
        delivered_at=None,
        last_error=None,
    )


def test_the_outboxs_facts_become_the_summary_of_the_study() -> None:
    storage = optuna.storages.InMemoryStorage()
    study = single_objective_study(storage)
    assert summary(storage, FACTS) == sweep_summary(
        study,
        sweep_id="abc",
        name="nightly",
        status="deadline_reached",
        finished_at=datetime(2025, 3, 1, 6, 30, tzinfo=UTC),
    )


def test_the_summary_of_a_sweep_whose_study_is_gone_is_its_facts() -> None:
    bare = summary(optuna.storages.InMemoryStorage(), FACTS)
    assert bare == {
        "event": "sweep.finished",
        **{k: v for k, v in FACTS.items() if k != "study_name"},
    }


def test_the_body_carries_the_idempotency_key() -> None:
    storage = optuna.storages.InMemoryStorage()
    single_objective_study(storage)
    body = json.loads(render(storage, event("sweep.finished", FACTS)))
    assert body["idempotency_key"] == "0123456789abcdef0123456789abcdef"
    assert body["best"]["number"] == 2
    assert "SECRET" not in json.dumps(body)


def test_the_batch_body_summarizes_each_sweep() -> None:
    storage = optuna.storages.InMemoryStorage()
    single_objective_study(storage)
    gone = {**FACTS, "sweep_id": "def", "name": "gone", "study_name": "gone"}
    payload = {
        "name": "tonight",
        "deadline": "2025-03-01T07:00:00Z",
        "finished_at": "2025-03-01T06:30:00Z",
        "sweeps": [FACTS, gone],
    }
    body = json.loads(render(storage, event("batch.finished", payload)))
    assert (body["event"], body["name"], body["deadline"]) == (
        "batch.finished",
        "tonight",
        "2025-03-01T07:00:00Z",
    )
    assert [s["name"] for s in body["sweeps"]] == ["nightly", "gone"]
    assert body["sweeps"][0]["trials"]["COMPLETE"] == 3
    assert "trials" not in body["sweeps"][1]
    assert body["idempotency_key"] == "0123456789abcdef0123456789abcdef"
