"""The CLI as a REST client: ``submit`` and ``cancel`` (REGSWEEP_SERVICE_URL, REGSWEEP_TOKEN).

Light on purpose: these commands load neither PyTorch nor scikit-learn. ``submit`` sends the
spec as written and the service validates it, listing every problem as ``validate`` would.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from regcore.cli._app import app, console, settings
from regcore.settings import Settings

#: Where the client commands find the service when REGSWEEP_SERVICE_URL is unset.
DEFAULT_SERVICE_URL = "http://127.0.0.1:8000"


def call_service(
    config: Settings, method: str, path: str, *, raw: bool = False, **kwargs: Any
) -> Any:
    """The service's JSON answer (the response itself with ``raw``); exits on an error."""
    import httpx

    base = (config.service_url or DEFAULT_SERVICE_URL).rstrip("/")
    headers = dict(kwargs.pop("headers", {}))
    if config.token:
        headers["Authorization"] = f"Bearer {config.token}"
    try:
        response = httpx.request(method, f"{base}{path}", headers=headers, timeout=30, **kwargs)
    except httpx.HTTPError as exc:
        console.print(
            f"[red]cannot reach the service at {base}: {exc}[/red]\n"
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
    from regcore.documents import DocumentError, read_document

    try:
        data = read_document(spec)
    except DocumentError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    try:
        body = json.dumps(data, default=_iso)
    except (TypeError, ValueError) as exc:
        console.print(f"[red]{spec}: {exc}[/red]", highlight=False)
        raise typer.Exit(2) from None
    headers = {"Content-Type": "application/json"}
    sweep = call_service(settings(), "POST", "/v1/sweeps", content=body, headers=headers)
    console.print(f"submitted {sweep['name']}: id {sweep['id']} ({sweep['status']})")


@app.command()
def cancel(sweep_id: Annotated[str, typer.Argument(help="The sweep's id.")]) -> None:
    """Cancel a sweep: no new trial of it starts."""
    sweep = call_service(settings(), "POST", f"/v1/sweeps/{sweep_id}/cancel")
    console.print(f"{sweep['name']}: {sweep['status']}")


def _iso(value: object) -> str:
    """YAML reads timestamps (a deadline) as dates and datetimes: ISO 8601 in JSON."""
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON: write it as text in the spec")
