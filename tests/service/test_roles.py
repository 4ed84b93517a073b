"""Token roles and sweep owners: read tokens only read, a token without a role (``name:token``)
manages only its own sweeps, and admin tokens manage every sweep; every refusal is a 403 in
the one error shape, naming who was refused what and why."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from regcore.service.auth import ApiToken, parse_tokens
from tests.service.conftest import MakeApp, client_for, make_spec

pytestmark = pytest.mark.anyio

# Two owners without a role, an admin and a read-only dashboard, as an operator writes them.
SETTING = "alice:a-t0k3n,bob:b-t0k3n,ops:o-t0k3n:admin,dash:d-t0k3n:read"
BEARER = {name: f"Bearer {name[0]}-t0k3n" for name in ("alice", "bob", "ops", "dash")}
# Who may change alice's sweep, by role: its owner and the admin.
MANAGES_ALICES = {"alice": True, "bob": False, "ops": True, "dash": False}
SUBMITS = {"alice": True, "bob": True, "ops": True, "dash": False}


@pytest.fixture
def app(make_app: MakeApp) -> FastAPI:
    return make_app(api_tokens=parse_tokens(SETTING), deliver_webhooks=False)


async def _alices_sweep(app: FastAPI, name: str = "alices") -> str:
    async with client_for(app, authorization=BEARER["alice"]) as alice:
        created = await alice.post("/v1/sweeps", json=make_spec(name))
    assert created.status_code == 201, created.text
    assert created.json()["owner"] == "alice"
    sweep_id: str = created.json()["id"]
    return sweep_id


def _assert_forbidden(response: httpx.Response, caller: str, *words: str) -> None:
    assert response.status_code == 403, response.text
    body = response.json()
    assert set(body) == {"detail", "field", "problems"}
    assert body["field"] == "Authorization"
    assert f"token {caller!r} may not" in body["detail"]
    for word in words:
        assert word in body["detail"], body["detail"]


@pytest.mark.parametrize("caller", list(MANAGES_ALICES))
async def test_only_the_owner_or_an_admin_cancels_a_sweep(app: FastAPI, caller: str) -> None:
    sweep_id = await _alices_sweep(app)
    async with client_for(app, authorization=BEARER[caller]) as client:
        response = await client.post(f"/v1/sweeps/{sweep_id}/cancel")
        after = await client.get(f"/v1/sweeps/{sweep_id}")

    if MANAGES_ALICES[caller]:
        assert response.status_code == 200, response.text
        assert after.json()["status"] == "cancelled"
    else:
        if caller == "dash":
            _assert_forbidden(response, caller, "POST", "its role is read")
        else:
            why = "submitted by token 'alice'"
            _assert_forbidden(response, caller, f"cancel sweep {sweep_id!r}", why, "admin")
        assert after.json()["status"] == "queued"


@pytest.mark.parametrize("caller", list(MANAGES_ALICES))
async def test_only_the_owner_or_an_admin_deletes_a_sweep(app: FastAPI, caller: str) -> None:
    sweep_id = await _alices_sweep(app)
    async with client_for(app, authorization=BEARER[caller]) as client:
        response = await client.delete(f"/v1/sweeps/{sweep_id}")
    async with client_for(app, authorization=BEARER["ops"]) as admin:
        after = await admin.get(f"/v1/sweeps/{sweep_id}")

    if MANAGES_ALICES[caller]:
        assert response.status_code == 204, response.text
        assert after.status_code == 404
    else:
        words = ("its role is read",) if caller == "dash" else (f"delete sweep {sweep_id!r}",)
        _assert_forbidden(response, caller, *words)
        assert after.status_code == 200


@pytest.mark.parametrize("caller", list(SUBMITS))
async def test_read_tokens_submit_neither_sweeps_nor_batches(app: FastAPI, caller: str) -> None:
    batch = {"name": f"b-{caller}", "template": make_spec("t"), "matrix": {"training.seed": [0]}}
    async with client_for(app, authorization=BEARER[caller]) as client:
        sweep = await client.post("/v1/sweeps", json=make_spec(f"s-{caller}"))
        batched = await client.post("/v1/batches", json=batch)
        listed = await client.get("/v1/sweeps")

    if SUBMITS[caller]:
        assert (sweep.status_code, batched.status_code) == (201, 201), (sweep.text, batched.text)
        assert sweep.json()["owner"] == caller
        assert batched.json()["owner"] == caller
        assert {s["owner"] for s in batched.json()["sweeps"]} == {caller}
    else:
        _assert_forbidden(sweep, caller, "POST /v1/sweeps", "role submit or admin")
        _assert_forbidden(batched, caller, "POST /v1/batches", "role submit or admin")
        assert listed.json()["count"] == 0


@pytest.mark.parametrize("caller", list(MANAGES_ALICES))
async def test_every_token_reads_every_owners_sweeps_and_batches(app: FastAPI, caller: str) -> None:
    sweep_id = await _alices_sweep(app)
    batch = {"name": "alices-batch", "template": make_spec("t"), "matrix": {"training.seed": [0]}}
    async with client_for(app, authorization=BEARER["alice"]) as alice:
        assert (await alice.post("/v1/batches", json=batch)).status_code == 201
    async with client_for(app, authorization=BEARER[caller]) as client:
        reads = [
            await client.get("/v1/sweeps"),
            await client.get(f"/v1/sweeps/{sweep_id}"),
            await client.get(f"/v1/sweeps/{sweep_id}/trials"),
            await client.get(f"/v1/sweeps/{sweep_id}/trials", params={"format": "csv"}),
            await client.get(f"/v1/sweeps/{sweep_id}/report"),
            await client.get("/v1/batches/alices-batch"),
            await client.get("/v1/batches/alices-batch/report"),
            await client.get("/v1/workers"),
        ]

    assert [r.status_code for r in reads] == [200] * len(reads), [r.text for r in reads]


async def test_a_sweep_submitted_with_auth_off_is_managed_by_admins_only(
    make_app: MakeApp,
) -> None:
    sweep_id = None
    async with client_for(make_app()) as open_client:  # auth off, on the same database
        sweep_id = (await open_client.post("/v1/sweeps", json=make_spec("ownerless"))).json()["id"]
    app = make_app(api_tokens=parse_tokens(SETTING), deliver_webhooks=False)
    async with client_for(app, authorization=BEARER["bob"]) as bob:
        refused = await bob.delete(f"/v1/sweeps/{sweep_id}")
    async with client_for(app, authorization=BEARER["ops"]) as admin:
        deleted = await admin.delete(f"/v1/sweeps/{sweep_id}")

    _assert_forbidden(refused, "bob", "no token", "admin")
    assert deleted.status_code == 204


async def test_anonymous_reads_with_read_only_open_cannot_manage(make_app: MakeApp) -> None:
    app = make_app(api_tokens=parse_tokens(SETTING), read_only_open=True)
    sweep_id = await _alices_sweep(app)
    async with client_for(app) as anonymous:
        read = await anonymous.get(f"/v1/sweeps/{sweep_id}")
        cancelled = await anonymous.post(f"/v1/sweeps/{sweep_id}/cancel")

    assert read.status_code == 200
    assert cancelled.status_code == 401


def test_parse_tokens_reads_roles_and_keeps_name_token_unchanged() -> None:
    tokens = parse_tokens(SETTING + ", legacy:with:colons , weird:x:Admin")

    assert tokens is not None
    assert {n: t.role for n, t in tokens.items()} == {
        "alice": "submit",
        "bob": "submit",
        "ops": "admin",
        "dash": "read",
        "legacy": "submit",
        "weird": "submit",  # roles are lower case: "x:Admin" is a token, as it always was
    }
    assert tokens["ops"] == ApiToken(secret="o-t0k3n", role="admin")
    assert tokens["legacy"].secret == "with:colons"
    assert tokens["weird"].secret == "x:Admin"
    assert "t0k3n" not in repr(tokens)


@pytest.mark.parametrize("text", ["ops::admin", "ops: :read", ":pw1:read"])
def test_parse_tokens_refuses_a_role_without_a_token(text: str) -> None:
    with pytest.raises(ValueError, match="name:token:role") as error:
        parse_tokens(text)
    assert "pw1" not in str(error.value)
