"""What sweeps found: ``status``, ``report`` and ``export``, from the service or the database.

With ``--storage URL``, or when no service is configured (REGSWEEP_SERVICE_URL unset), they
read the database itself (REGSWEEP_DATABASE_URL; by default the ``regsweep.db`` that
``regsweep run`` writes), so a local run's results need no service. Otherwise they ask the
service. A sweep is named by its id, or in the database also by its name.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from regcore.cli._app import app, console, settings, show
from regcore.cli._client import call_service
from regcore.cli._database import Database, Storage, database_url, open_database
from regcore.cli._extras import require

if TYPE_CHECKING:
    pass

# -- status -----------------------------------------------------------------------------------


def _table(sweeps: list[dict[str, Any]]) -> RenderableType:
    """The sweeps' table (with an error column when one failed, a note column when one
    waits for a worker that can run it); for one sweep, its error in full and why its
    trials failed below."""
    table = Table()
    errors = any(s.get("error") for s in sweeps)
    notes = any(s.get("note") for s in sweeps)
    extra = ("error",) * errors + ("note",) * notes
    for column in ("id", "name", "status", "priority", "done", "best", *extra):
        table.add_column(column, overflow="fold" if column in extra else "ellipsis")
    for s in sweeps:
        progress = s.get("progress") or {}
        best = s.get("best") or {}
        values = best.get("values") or []
        cells = [
            s["id"],
            s["name"],
            s["status"],
            str(s.get("priority", "")),
            f"{progress.get('finished', '?')}/{progress.get('n_trials', '?')}",
            ", ".join(f"{v:.4g}" for v in values) or "–",
        ]
        error = str(s.get("error") or "").strip()
        first = (error.splitlines() or [""])[0]
        note = [str(s.get("note") or "")] * notes
        table.add_row(*cells, *([first[:80] if len(sweeps) > 1 else first] * errors), *note)
    if len(sweeps) != 1:
        return table
    return Group(table, *_why(sweeps[0]), *_decided(sweeps[0]))


def _decided(sweep: dict[str, Any]) -> list[Text]:
    """The confirmation's verdict and what to paste, or that the best is unconfirmed."""
    decision = sweep.get("decision")
    if not decision:
        if sweep.get("best"):
            return [Text("best: one seed's result, unconfirmed (no recommendation)")]
        return []
    lines = [Text(f"decision: {decision['verdict']}")]
    chosen = decision.get("recommended")
    if chosen and not decision.get("pending"):
        lines += [Text(f"  {line}", style="bold") for line in chosen["paste"]]
    return lines


def _why(sweep: dict[str, Any]) -> list[Text]:
    """What failed: the sweep's error in full, and its failed trials by reason."""
    lines = []
    error = str(sweep.get("error") or "").strip()
    if "\n" in error:  # the table shows its first line
        lines.append(Text(f"error: {error}", style="red"))
    failures = sweep.get("failures") or []
    if failures:
        total = sum(int(f["trials"]) for f in failures)
        lines.append(Text(f"{total} failed trial(s), by reason:", style="red"))
        lines += [Text(f"  {f['trials']} × {f['reason']}") for f in failures]
    return lines


def _rows(database: Database, ref: str | None) -> list[dict[str, Any]]:
    """Sweeps as the service lists them (progress; the best value for one sweep)."""
    from regcore.store import count_trials_by_study, list_sweeps

    if ref is None:
        sweeps, _ = list_sweeps(database.engine, limit=100)
    else:
        sweeps = [database.sweep(ref)]
    counts = count_trials_by_study(database.engine, [s.study_name for s in sweeps])
    rows = []
    for sweep in sweeps:
        n_trials = int((sweep.spec.get("budget") or {}).get("n_trials", 0))
        progress = {"finished": counts[sweep.study_name].finished, "n_trials": n_trials}
        row: dict[str, Any] = {"id": sweep.id, "name": sweep.name, "status": sweep.status}
        row.update(priority=sweep.priority, progress=progress, best=None, error=sweep.error)
        row["note"] = sweep.note
        study = database.study(sweep) if ref is not None else None
        if study is not None and len(study.directions) == 1:
            from regcore.confirm import confirmation
            from regcore.sweeps.results import best_trial

            found = best_trial(study)  # the search's, trained from scratch
            row["best"] = None if found is None else {"values": found.values}
            decided = confirmation(study)
            row["decision"] = None if decided is None else decided.summary()
        if study is not None:
            from regcore.sweeps.results import failure_reasons

            row["failures"] = [{"reason": r, "trials": n} for r, n in failure_reasons(study)]
        rows.append(row)
    return rows


@app.command()
def status(
    sweep: Annotated[
        str | None, typer.Argument(help="A sweep's id; all sweeps if left out.")
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help="Refresh every 2 s until Ctrl-C.")] = False,
    storage: Storage = None,
) -> None:
    """Show one sweep (or all): status, trials done of the budget, best value, and what
    failed (the sweep's error, its failed trials by reason)."""
    url, config = database_url(storage), settings()
    if url is not None:
        with open_database(url, command="status") as database:
            show(lambda: _table(_rows(database, sweep)), watch=watch)
        return

    def fetch() -> RenderableType:
        if sweep is None:
            page = call_service(config, "GET", "/v1/sweeps", params={"limit": 100})
            return _table(page["data"])
        return _table([call_service(config, "GET", f"/v1/sweeps/{sweep}")])

    show(fetch, watch=watch)


# -- report and export ------------------------------------------------------------------------


@app.command()
def report(
    sweep: Annotated[str | None, typer.Argument(help="A sweep's id.")] = None,
    batch: Annotated[str | None, typer.Option(help="A batch's name instead of a sweep.")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="HTML file (default: NAME.html).")
    ] = None,
    storage: Storage = None,
) -> None:
    """Save a sweep's (or a batch's) self-contained HTML report."""
    if (sweep is None) == (batch is None):
        console.print("[red]give a sweep id or --batch NAME (one of them)[/red]")
        raise typer.Exit(2)
    url = database_url(storage)
    if url is None:
        path = f"/v1/batches/{batch}/report" if batch else f"/v1/sweeps/{sweep}/report"
        response = call_service(settings(), "GET", path, raw=True)
        name, html = _filename(response, f"{batch or sweep}.html"), response.text
    else:
        require("reports", command="report")
        with open_database(url, command="report") as database:
            name, html = _local_report(database, sweep, batch)
    target = output or Path(name)
    target.write_text(html, encoding="utf-8")
    console.print(f"report written to {target} ({len(html.encode()) / 1e6:.1f} MB)")


def _local_report(database: Database, sweep: str | None, batch: str | None) -> tuple[str, str]:
    from regcore.reports import batch_report, sweep_report
    from regcore.store import BatchNotFoundError, batch_sweeps, get_batch

    if batch is not None:
        try:
            row = get_batch(database.engine, batch)
        except BatchNotFoundError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
        entries = [
            (study, s.spec, s.status)
            for s in batch_sweeps(database.engine, row.name)
            if (study := database.study(s)) is not None
        ]
        return f"{row.name}.html", batch_report(entries, batch_name=row.name)
    assert sweep is not None
    found = database.sweep(sweep)
    study = database.study(found)
    if study is None:
        console.print(f"[red]sweep {found.id} has no study any more[/red]")
        raise typer.Exit(2)
    page = sweep_report(study, spec=found.spec, sweep_id=found.id, status=found.status)
    return f"{found.name}.html", page


@app.command()
def export(
    sweep: Annotated[str, typer.Argument(help="A sweep's id.")],
    format: Annotated[str, typer.Option(help="csv or json.")] = "csv",
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File (default: standard output).")
    ] = None,
    storage: Storage = None,
) -> None:
    """Export every trial of a sweep as CSV or JSON (params_*, attrs_* columns)."""
    if format not in ("csv", "json"):
        console.print(f"[red]--format takes csv or json, but got {format!r}[/red]")
        raise typer.Exit(2)
    url = database_url(storage)
    if url is None:
        params = {"format": format}
        text = call_service(
            settings(), "GET", f"/v1/sweeps/{sweep}/trials", raw=True, params=params
        ).text
    else:
        from regcore.sweeps import export as exports

        with open_database(url, command="export") as database:
            study = database.study(database.sweep(sweep))
            if study is None:
                text = "" if format == "csv" else "[]"
            else:
                text = exports.to_csv(study) if format == "csv" else exports.to_json(study)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    console.print(f"trials written to {output}")


def _filename(response: Any, default: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    name = disposition.partition('filename="')[2].partition('"')[0]
    return Path(name).name or default
