"""The CLI as a REST client: ``submit``, ``status``, ``cancel`` (REGSWEEP_SERVICE_URL/TOKEN)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from regcore.cli._app import app, console, show
from regcore.settings import Settings


def call_service(method: str, path: str, *, raw: bool = False, **kwargs: Any) -> Any:
    """The service's JSON answer (the response itself with ``raw``); exits on an error."""
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
    if raw:
        return response
    return response.json() if response.content else None


@app.command()
def submit(spec: Annotated[Path, typer.Argument(help="Sweep spec, YAML or JSON.")]) -> None:
    """Submit a sweep to the service; prints its id."""
    from regcore.cli._local import load_spec_or_exit

    loaded = load_spec_or_exit(spec)
    sweep = call_service("POST", "/v1/sweeps", json=loaded.to_json_dict())
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
            f"{progress.get('finished', '?')}/{progress.get('n_trials', '?')}",
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

    def fetch() -> Table:
        if sweep_id is None:
            return _table(call_service("GET", "/v1/sweeps", params={"limit": 100})["data"])
        return _table([call_service("GET", f"/v1/sweeps/{sweep_id}")])

    show(fetch, watch=watch)


@app.command()
def cancel(sweep_id: Annotated[str, typer.Argument(help="The sweep's id.")]) -> None:
    """Cancel a sweep: no new trial of it starts."""
    sweep = call_service("POST", f"/v1/sweeps/{sweep_id}/cancel")
    console.print(f"{sweep['name']}: {sweep['status']}")


@app.command()
def report(
    sweep_id: Annotated[str | None, typer.Argument(help="A sweep's id.")] = None,
    batch: Annotated[str | None, typer.Option(help="A batch's name instead of a sweep.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="HTML file (default: NAME.html).")
    ] = None,
) -> None:
    """Save a sweep's (or a batch's) self-contained HTML report."""
    if (sweep_id is None) == (batch is None):
        console.print("[red]give a sweep id or --batch NAME (one of them)[/red]")
        raise typer.Exit(2)
    path = f"/v1/batches/{batch}/report" if batch else f"/v1/sweeps/{sweep_id}/report"
    response = call_service("GET", path, raw=True)
    target = output or Path(_filename(response, f"{batch or sweep_id}.html"))
    target.write_text(response.text, encoding="utf-8")
    console.print(f"report written to {target} ({len(response.content) / 1e6:.1f} MB)")


@app.command()
def export(
    sweep_id: Annotated[str, typer.Argument(help="A sweep's id.")],
    format: Annotated[str, typer.Option(help="csv or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: standard output).")
    ] = None,
) -> None:
    """Export every trial of a sweep as CSV or JSON (params_*, attrs_* columns)."""
    if format not in ("csv", "json"):
        console.print(f"[red]--format takes csv or json, but got {format!r}[/red]")
        raise typer.Exit(2)
    path, params = f"/v1/sweeps/{sweep_id}/trials", {"format": format}
    response = call_service("GET", path, params=params, raw=True)
    if output is None:
        typer.echo(response.text, nl=False)
        return
    output.write_text(response.text, encoding="utf-8")
    console.print(f"trials written to {output}")


def _filename(response: Any, default: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    name = disposition.partition('filename="')[2].partition('"')[0]
    return Path(name).name or default
