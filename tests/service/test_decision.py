"""``GET /v1/sweeps/{id}`` gives the search's best apart from the confirmation, and the
confirmation's decision with what to paste."""

from __future__ import annotations

import httpx
import optuna
import pytest

from regcore.confirm import confirmation_study, queue_confirmation
from regcore.spec import parse_spec
from regcore.store import create_storage
from tests.service.conftest import make_spec

pytestmark = pytest.mark.anyio

CONFIRMED = {"confirm": {"seeds": 3, "top": 1}}


def _search(database_url: str, name: str) -> optuna.Study:
    """The baseline, a warm-started path point that looks best, and a trial from scratch."""
    storage = create_storage(database_url)
    study = optuna.load_study(study_name=name, storage=storage)
    baseline = study.ask()  # the queued λ = 0 trial
    baseline.set_user_attr("method", "fused")
    study.tell(baseline, 0.5)
    for value, attrs in ((0.1, {"path_step": 1, "warm_start": 0}), (0.3, {})):
        trial = study.ask()
        trial.suggest_float("l2", 1e-6, 1e-2, log=True)
        for key, attr in {"method": "fused", "method_class": "penalty", **attrs}.items():
            trial.set_user_attr(key, attr)
        study.tell(trial, value)
    return study


def _confirm(study: optuna.Study, gain: float) -> None:
    """Train the queued confirmation as workers would: the candidate gains ``gain``."""
    confirm = confirmation_study(study)
    assert confirm is not None
    while confirm.get_trials(states=(optuna.trial.TrialState.WAITING,)):
        trial = confirm.ask()
        twin = bool(trial.user_attrs.get("baseline"))
        l2 = 0.0 if twin else trial.suggest_float("l2", 1e-6, 1e-2, log=True)
        for key, attr in {"method": "fused", "l1": 0.0, "l2": l2}.items():
            trial.set_user_attr(key, attr)
        trial.set_user_attr("method_class", "none" if twin else "penalty")
        confirm.tell(trial, 0.5 - (0.0 if twin else gain))


async def test_best_is_the_search_trained_from_scratch_and_no_decision_unconfirmed(
    client: httpx.AsyncClient, database_url: str
) -> None:
    created = await client.post("/v1/sweeps", json=make_spec("unconfirmed", **CONFIRMED))
    sweep_id = created.json()["id"]
    _search(database_url, "unconfirmed")

    body = (await client.get(f"/v1/sweeps/{sweep_id}")).json()

    assert body["best"]["values"] == [0.3]  # not the warm-started 0.1
    assert body["decision"] is None
    assert body["confirmation_trials"]["COMPLETE"] == 0


async def test_a_confirmed_sweep_reads_with_its_decision_apart_from_the_search(
    client: httpx.AsyncClient, database_url: str
) -> None:
    created = await client.post("/v1/sweeps", json=make_spec("confirmed", **CONFIRMED))
    sweep_id = created.json()["id"]
    study = _search(database_url, "confirmed")
    spec = parse_spec({**make_spec("confirmed", **CONFIRMED), "name": "confirmed"})
    queue_confirmation(study, spec)
    _confirm(study, gain=0.02)

    body = (await client.get(f"/v1/sweeps/{sweep_id}")).json()

    assert body["trials"]["COMPLETE"] == 3  # the search's own
    assert body["confirmation_trials"]["COMPLETE"] == 6  # 3 seeds × the best and its twin
    assert body["best"]["values"] == [0.3]
    decision = body["decision"]
    assert decision["beats_baseline"] is True
    assert decision["verdict"].startswith("penalty with λ₁ = 0, λ₂ = ")
    assert "beats its λ = 0 twin on 3 of 3 seeds" in decision["verdict"]
    assert decision["recommended"]["paste"][0].startswith("reg = Regularizer(model, l1=0, l2=")
    assert [s["label"] for s in decision["settings"]] == ["best", "baseline (λ=0)"]
    assert decision["settings"][0]["wins"] == 3


async def test_deleting_a_sweep_deletes_its_confirmation_study_too(
    client: httpx.AsyncClient, database_url: str
) -> None:
    created = await client.post("/v1/sweeps", json=make_spec("gone", **CONFIRMED))
    sweep_id = created.json()["id"]
    study = _search(database_url, "gone")
    queue_confirmation(study, parse_spec({**make_spec("gone", **CONFIRMED), "name": "gone"}))
    storage = create_storage(database_url)
    assert "gone:confirm" in optuna.get_all_study_names(storage=storage)

    response = await client.delete(f"/v1/sweeps/{sweep_id}", params={"force": "true"})

    assert response.status_code == 204
    names = optuna.get_all_study_names(storage=storage)
    assert "gone" not in names
    assert "gone:confirm" not in names
