"""The CLI as a REST client: ``submit``, ``status``, ``cancel`` (REGSWEEP_SERVICE_URL/TOKEN)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.table import Table

from regcore.cli._app import app, console
from regcore.settings import Settings


def _request(method: str, path: str, **kwargs: Any) -> Any:
    import httpx

    settings = Settings()
    headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
    try:
        response = httpx.request(
            method,
            f"{settings.service_url.rstrip('/')}{path}",
            headers=headers,
            timeout=30,
            **kwargs,
        )
    except httpx.HTTPError as exc:
        console.print(
            f"[red]cannot reach the service at {settings.service_url}: {exc}[/red]\n"
            "Start it with `regsweep serve`, or set REGSWEEP_SERVICE_URL."
        )
        raise typer.Exit(1) from None
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {"detail": response.text}
        console.print(f"[red]{response.status_code}: {body.get('detail')}[/red]")
        for problem in body.get("problems") or []:
            console.print(f"  {problem.get('field')}: {problem.get('message')}", highlight=False)
        raise typer.Exit(2 if response.status_code in (400, 409, 413, 422) else 1)
    return response.json() if response.content else None


@app.command()
def submit(spec: Annotated[Path, typer.Argument(help="Sweep spec, YAML or JSON.")]) -> None:
    """Submit a sweep to the service; prints its id."""
    from regcore.cli._local import load_spec_or_exit

    loaded = load_spec_or_exit(spec)
    sweep = _request("POST", "/v1/sweeps", json=loaded.to_json_dict())
    console.print(f"submitted {sweep['name']}: id {sweep['id']} ({sweep['status']})")


def _table(sweeps: list[dict[str, Any]]) -> Table:
    table = Table()
    for column in ("id", "name", "status", "priority", "done", "best"):
        table.add_column(column)
    for s in sweeps:
        progress = s.get("progress") or {}
        best = s.get("best") or {}
        values = best.get("values") or []
        table.add_row(
            s["id"],
            s["name"],
            s["status"],
            str(s.get("priority", "")),
            f"{progress.get('finished', '?')}/{progress.get('total', '?')}",
            ", ".join(f"{v:.4g}" for v in values) or "–",
        )
    return table


@app.command()
def status(
    sweep_id: Annotated[
        str | None, typer.Argument(help="A sweep id; all sweeps if left out.")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s until Ctrl-C.")] = False,
) -> None:
    """Show one sweep (or all) from the service."""
    import threading

    def fetch() -> Table:
        if sweep_id is None:
            return _table(_request("GET", "/v1/sweeps", params={"limit": 100})["data"])
        return _table([_request("GET", f"/v1/sweeps/{sweep_id}")])

    if not watch:
        console.print(fetch())
        return
    tick = threading.Event()
    with Live(fetch(), console=console, refresh_per_second=1) as live:
        try:
            while not tick.wait(2.0):
                live.update(fetch())
        except KeyboardInterrupt:
            pass


@app.command()
def cancel(sweep_id: Annotated[str, typer.Argument(help="The sweep's id.")]) -> None:
    """Cancel a sweep: no new trial of it starts."""
    sweep = _request("POST", f"/v1/sweeps/{sweep_id}/cancel")
    console.print(f"{sweep['name']}: {sweep['status']}")
