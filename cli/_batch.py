"""``regsweep batch submit FILE`` and ``regsweep batch status NAME``: overnight batches
through the service (REGSWEEP_SERVICE_URL / REGSWEEP_TOKEN)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from regcore.cli._app import app, console, load_plugins, settings, show
from regcore.cli._client import call_service

batch_app = typer.Typer(help="Many sweeps as one batch, with one deadline.", no_args_is_help=True)
app.add_typer(batch_app, name="batch")


@batch_app.command("submit")
def submit_batch(
    file: Annotated[Path, typer.Argument(help="Batch file, YAML or JSON.")],
) -> None:
    """Submit a batch; says whether it fits before its deadline with the workers there are."""
    from regcore.spec import SpecError
    from regcore.spec.batch import load_batch

    load_plugins()  # its sweeps may name a plug-in's workload

    try:
        batch = load_batch(file)
        specs = batch.expand()  # every problem shown here, before anything is sent
    except SpecError as exc:
        console.print(f"[red]{file}: the batch is not valid[/red]")
        for problem in exc.problems:
            console.print(f"  {problem.field}: {problem.message}", highlight=False)
        raise typer.Exit(2) from None
    # The deadline goes out resolved ("07:00" is this machine's local time, not the server's).
    body = batch.model_dump(mode="json", exclude_none=True)
    created = call_service(settings(), "POST", "/v1/batches", json=body)
    console.print(f"submitted batch {created['name']}: {len(specs)} sweeps")
    console.print(_table(created))
    estimate = created["estimate"]
    for warning in estimate["warnings"]:
        console.print(f"[yellow]warning: {warning}[/yellow]")
    if estimate["fits"]:
        console.print(
            f"fits: about {estimate['needed_s'] / 60:.0f} min of trials on "
            f"{estimate['workers']} worker(s), {estimate['available_s'] / 60:.0f} min to go"
        )


@batch_app.command("status")
def batch_status(
    name: Annotated[str, typer.Argument(help="The batch's name.")],
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s until Ctrl-C.")] = False,
) -> None:
    """Every sweep of a batch: status, trials done/total, best so far, estimated finish."""

    config = settings()

    def fetch() -> Table:
        return _table(call_service(config, "GET", f"/v1/batches/{name}"))

    show(fetch, watch=watch)


def _table(batch: dict[str, Any]) -> Table:
    deadline = _local(batch.get("deadline")) or "none"
    table = Table(title=f"batch {batch['name']} (deadline {deadline})")
    for column in ("sweep", "status", "done", "best", "method", "λ₁", "λ₂", "finish"):
        table.add_column(column)
    for s in batch["sweeps"]:
        progress = s["progress"]
        table.add_row(
            s["name"],
            s["status"],
            f"{progress['finished']}/{progress['n_trials']}",
            _number(s["best_value"]),
            s["best_method"] or "–",
            _number(s["best_l1"]),
            _number(s["best_l2"]),
            _local(s["estimated_finish"]) or "–",
        )
    return table


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _local(stamp: str | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromisoformat(stamp).astimezone().strftime("%a %H:%M")
