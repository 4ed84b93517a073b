"""The entry point: an app from settings, its database upgraded and its tokens loaded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from regcore.service.main import app_from_env, app_from_settings, is_loopback
from regcore.settings import Settings
from regcore.store import create_engine_for, current_revision, head_revision
from tests.service.conftest import client_for, make_spec

pytestmark = pytest.mark.anyio


async def test_app_from_settings_upgrades_and_loads_tokens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    settings = Settings(database_url=url, api_tokens="alice:s3cret")

    app = app_from_settings(settings, host="127.0.0.1")
    async with client_for(app, authorization="Bearer s3cret") as client:
        created = await client.post("/v1/sweeps", json=make_spec())
    async with client_for(app) as client:
        refused = await client.get("/v1/sweeps")
    app.state.database.dispose()

    engine = create_engine_for(url)
    assert current_revision(engine) == head_revision()
    engine.dispose()
    assert created.status_code == 201
    assert created.json()["owner"] == "alice"
    assert refused.status_code == 401


@pytest.mark.parametrize(("host", "warned"), [("0.0.0.0", True), ("127.0.0.1", False)])
def test_auth_off_is_a_loud_warning_unless_on_loopback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, host: str, warned: bool
) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", api_tokens=None)

    with caplog.at_level(logging.WARNING, logger="regcore.service.main"):
        app_from_settings(settings, host=host, upgrade=False).state.database.dispose()

    assert ("REGSWEEP_API_TOKENS is unset" in caplog.text) is warned


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("h", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_malformed_token_setting_stops_the_start(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'x.db'}", api_tokens="s3cret")

    with pytest.raises(ValueError, match="name:token") as error:
        app_from_settings(settings, upgrade=False)
    assert "s3cret" not in str(error.value)


async def test_app_from_env_honours_read_only_open(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGSWEEP_DATABASE_URL", database_url)
    monkeypatch.setenv("REGSWEEP_API_TOKENS", "alice:s3cret")
    monkeypatch.setenv("REGSWEEP_READ_ONLY_OPEN", "true")

    app = app_from_env()
    async with client_for(app) as anonymous:
        listed = await anonymous.get("/v1/sweeps")
        submitted = await anonymous.post("/v1/sweeps", json=make_spec())
    app.state.database.dispose()

    assert listed.status_code == 200, listed.text
    assert submitted.status_code == 401
