"""A sweep that failed says why over REST: its error, and its failed trials by reason."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from regcore.store import finish_sweep, set_user_attrs
from tests.service.conftest import MakeApp, client_for, make_spec

pytestmark = pytest.mark.anyio


async def test_read_sweep_names_its_error_and_why_its_trials_failed(make_app: MakeApp) -> None:
    app = make_app(deliver_webhooks=False)
    async with client_for(app) as client:
        sweep_id = (await client.post("/v1/sweeps", json=make_spec("doomed"))).json()["id"]
        before = (await client.get(f"/v1/sweeps/{sweep_id}")).json()
        study = optuna.load_study(study_name="doomed", storage=app.state.database.storage)
        reasons = [f"ValueError: bad batch {i % 2} (at loop.py:{i})" for i in range(7)]
        for reason in reasons:  # as a worker ends a trial that raised
            trial = study.ask()
            set_user_attrs(trial, {"fail_reason": reason, "final_failure": True})
            study.tell(trial, state=TrialState.FAIL)
        finish_sweep(app.state.database.engine, sweep_id, "failed", error="every trial failed")
        after = (await client.get(f"/v1/sweeps/{sweep_id}")).json()

    assert before["failures"] == []
    assert after["status"] == "failed"
    assert after["error"] == "every trial failed"
    assert after["trials"]["FAIL"] == 7
    assert after["failures"] == [
        {"reason": "ValueError: bad batch 0", "trials": 4},
        {"reason": "ValueError: bad batch 1", "trials": 3},
    ]
