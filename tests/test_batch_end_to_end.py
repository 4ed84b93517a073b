"""An overnight batch in small: ``regsweep serve``, two ``regsweep worker``s, a batch of 3
sweeps with a deadline 20 s ahead, a local webhook receiver (allowed by
REGSWEEP_WEBHOOK_ALLOW: loopback is refused by default), and the batch report drawn in
headless Chromium."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import optuna
import pytest

from regcore.store import create_storage
from tests.browser import require_chromium, run_chromium
from tests.product import SPEC, Product
from tests.waiting import wait_until
from tests.webhooks import Receiver, receiving

GRACE_S = 4  # Product's REGSWEEP_GRACE_S


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as server:
        yield server


def test_a_batch_stops_at_its_deadline_notifies_and_reports(
    tmp_path: Path, receiver: Receiver
) -> None:
    chromium = require_chromium()
    product = Product(f"sqlite:///{tmp_path / 'regsweep.db'}", tmp_path)
    product.env["REGSWEEP_WEBHOOK_ALLOW"] = "127.0.0.1"  # the receiver is on loopback
    deadline = datetime.now(UTC) + timedelta(seconds=20)
    slow = {**SPEC, "training": {**SPEC["training"], "epochs": 40}}  # about 1 s a trial
    batch = {
        "name": "tonight",
        "deadline": deadline.isoformat(),
        "notify": {"webhook_url": receiver.url},
        "sweeps": [
            {
                **SPEC,
                "name": "quick",
                "priority": 2,
                "budget": {"n_trials": 3},
                "notify": {"webhook_url": receiver.url},
            },
            {
                **slow,
                "name": "long",
                "priority": 1,
                "budget": {"n_trials": 500},
                "notify": {"webhook_url": receiver.url},
            },
            {
                **slow,
                "name": "never",
                "budget": {"n_trials": 500},
                "notify": {"webhook_url": receiver.url},
            },
        ],
    }
    try:
        product.start_service()
        created = product.client.post("/v1/batches", json=batch)
        assert created.status_code == 201, created.text
        product.start_workers(2)
        wait_until(lambda: len(receiver.bodies) == 4, 90, "three sweep and one batch webhook")
        status = product.client.get("/v1/batches/tonight").json()
        report = product.client.get("/v1/batches/tonight/report")
    finally:
        product.close()

    by_name = {s["name"]: s for s in status["sweeps"]}
    assert by_name["tonight-quick"]["status"] == "completed"
    assert by_name["tonight-quick"]["progress"]["finished"] == 3
    assert by_name["tonight-long"]["status"] == "deadline_reached"
    assert 0 < by_name["tonight-long"]["progress"]["finished"] < 500
    assert by_name["tonight-never"]["status"] == "deadline_reached"  # never reached the front
    assert status["finished_at"] is not None

    # No trial started after the deadline; those running then ended within the grace period.
    storage = create_storage(product.env["REGSWEEP_DATABASE_URL"])
    for name in by_name:
        for trial in optuna.load_study(study_name=name, storage=storage).trials:
            if trial.datetime_start is not None:
                assert trial.datetime_start.astimezone(UTC) <= deadline + timedelta(seconds=1)
            if trial.datetime_complete is not None:
                assert trial.datetime_complete.astimezone(UTC) <= deadline + timedelta(
                    seconds=GRACE_S + 5
                )
    storage.engine.dispose()

    assert len({b["idempotency_key"] for b in receiver.bodies}) == 4  # once each
    events = sorted((b["event"], b.get("name")) for b in receiver.bodies)
    assert events == [
        ("batch.finished", "tonight"),
        ("sweep.finished", "tonight-long"),
        ("sweep.finished", "tonight-never"),
        ("sweep.finished", "tonight-quick"),
    ]
    quick = next(b for b in receiver.bodies if b.get("name") == "tonight-quick")
    assert quick["status"] == "completed"
    assert quick["best"]["regularizer"].startswith("Regularizer(model, l1=")
    whole = next(b for b in receiver.bodies if b["event"] == "batch.finished")
    assert {s["status"] for s in whole["sweeps"]} == {"completed", "deadline_reached"}

    assert report.status_code == 200
    page = tmp_path / "tonight.html"
    page.write_text(report.text, encoding="utf-8")
    dom = run_chromium(chromium, page, "--dump-dom").stdout
    drawn = len(re.findall(r'class="[^"]*js-plotly-plot', dom))
    assert drawn >= 2  # an optimization history per sweep that ran trials
    assert "tonight-long" in dom
