"""Commands that work on this machine alone: ``demo``, ``validate``, ``run``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from regcore.cli._app import app, console, load_plugins, settings
from regcore.cli._extras import require_driver

if TYPE_CHECKING:
    import optuna

    from regcore.confirm import Confirmation
    from regcore.spec import SweepSpec
    from regcore.worker.local import Progress as SweepProgress


@app.command()
def demo(
    l1: Annotated[float, typer.Option(help="λ₁ for every method that can do L1.")] = 1e-4,
    l2: Annotated[float, typer.Option(help="λ₂ for every method.")] = 1e-3,
    epochs: Annotated[int, typer.Option(min=1)] = 200,
    train_size: Annotated[int, typer.Option(min=10, help="Training samples of digits.")] = 150,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    seed: int = 0,
) -> None:
    """Train digits once per method at the same λ₁, λ₂ and compare them."""
    # The worker's training loop, imported here: regcore must not depend on worker at import.
    from regcore.regularizers import METHODS, NO_REGULARIZER
    from regcore.worker.training import TrainConfig, train_workload
    from regcore.workloads import build_workload

    workload = build_workload("digits_mlp", {"hidden": [512, 512], "train_size": train_size})
    config = TrainConfig(epochs=epochs, batch_size=32, lr=1e-3, seed=seed, device=device)
    table = Table(title=f"digits_mlp 64-512-512-10, {train_size} training samples, Adam")
    table.add_column("method", no_wrap=True)
    for column in ("λ₁", "λ₂", "val loss", "accuracy", "exact zeros", "step (ms)"):
        table.add_column(column, justify="right")
    runs = [(NO_REGULARIZER, 0.0, 0.0, "loss")] + [
        (m, 0.0 if m == "weight_decay" else l1, l2, m) for m in METHODS
    ]
    with console.status("training") as status:
        for label, run_l1, run_l2, method in runs:
            status.update(f"training with {label}")
            result = train_workload(workload, l1=run_l1, l2=run_l2, method=method, config=config)
            m = result.metrics
            table.add_row(
                label,
                f"{run_l1:g}",
                f"{run_l2:g}",
                f"{m['val_loss']:.4f}",
                f"{m['val_accuracy']:.3f}",
                f"{m['sparsity']:.1%}",
                f"{result.median_step_ms:.2f}",
            )
    console.print(table)
    console.print(
        "weight_decay cannot express L1, so it runs with λ₁ = 0. Only proximal sets weights "
        "exactly to zero; loss and hook only push them towards it."
    )


SpecArgument = Annotated[
    Path, typer.Argument(help="Sweep spec, YAML or JSON.", exists=False, dir_okay=False)
]


def load_spec_or_exit(path: Path) -> SweepSpec:
    from regcore.spec import SpecError, load_spec

    load_plugins()  # a spec may name a plug-in's workload

    try:
        return load_spec(path)
    except SpecError as exc:
        console.print(f"[red]{path}: the spec is not valid[/red]")
        for problem in exc.problems:
            console.print(f"  {problem.field}: {problem.message}", highlight=False)
        raise typer.Exit(2) from None


@app.command()
def validate(spec: SpecArgument) -> None:
    """Check a sweep spec; print every problem (exit 2) or "ok"."""
    loaded = load_spec_or_exit(spec)
    console.print(f"ok: {loaded.name} ({loaded.workload.name}, {loaded.budget.n_trials} trials)")
    for note in loaded.notes():
        console.print(f"note: {note}", highlight=False)


@app.command()
def run(
    spec: SpecArgument,
    storage: Annotated[
        str | None, typer.Option(help="Database URL (default: REGSWEEP_DATABASE_URL).")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    threads: Annotated[
        int | None,
        typer.Option(
            min=1, help="Torch threads per worker (default: OMP_NUM_THREADS, else cores ÷ workers)."
        ),
    ] = None,
) -> None:
    """Run a whole sweep on this machine (resumes it if it was started before)."""
    import sqlalchemy as sa

    from regcore.sweeps.studies import SpecMismatchError
    from regcore.worker.local import LocalOptions, run_local_sweep
    from regcore.worker.options import WorkerOptions

    config = settings()
    url = storage or config.database_url
    require_driver(url, command="run")
    loaded = load_spec_or_exit(spec)
    options = LocalOptions(
        worker=WorkerOptions.from_settings(config, database_url=url, threads=threads),
        workers=workers,
    )
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("best {task.fields[best]}"),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as bar:
        task = bar.add_task(loaded.name, total=loaded.budget.n_trials, best="–", detail="")

        def show(p: SweepProgress) -> None:
            best = "–" if p.best is None else f"{p.best:.4g}"
            detail = f"{p.running} running, {p.pruned} pruned, {p.failed} failed"
            if p.confirming or p.confirmed:
                detail += f"; confirming: {p.confirmed} done, {p.confirming} to go"
            bar.update(task, completed=p.finished, best=best, detail=detail)

        try:
            result = run_local_sweep(loaded, options, on_progress=show)
        except SpecMismatchError as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    outcome, sweep = result.outcome, result.sweep
    if outcome == "interrupted":
        console.print(
            f"[yellow]interrupted at {result.finished} of {loaded.budget.n_trials}[/yellow]: "
            "run the same command to resume."
        )
        raise typer.Exit(130)
    _print_results(result.study, loaded)
    if outcome == "deadline_reached":
        console.print("[yellow]stopped at the spec's timeout or deadline.[/yellow]")
    elif outcome in ("cancelled", "failed"):
        reason = f": {sweep.error}" if sweep.error else ""
        console.print(f"[red]the sweep was {outcome}{reason}[/red]")
    # regsweep dashboard also serves the best trials' weights (REGSWEEP_ARTIFACT_DIR).
    shown = sa.make_url(url).render_as_string(hide_password=True)
    where = "" if storage is None else f"REGSWEEP_DATABASE_URL={shown} "
    console.print(
        f"Results are in [bold]{shown}[/bold] (sweep {sweep.id}, study {loaded.name!r}). "
        f"Open them with:\n  {where}regsweep dashboard\n  {where}regsweep report {sweep.id}"
    )
    if outcome == "failed" or _all_failed(result.study):
        raise typer.Exit(1)


def _all_failed(study: optuna.Study) -> bool:
    """Whether the search ran trials and none completed (it says why, before exiting 1)."""
    from optuna.trial import TrialState

    from regcore.sweeps.results import failure_reasons

    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.COMPLETE for t in trials):
        return False
    reasons = failure_reasons(study, most=3)
    if not reasons:
        return False
    console.print(f"[red]every trial failed ({sum(n for _, n in reasons)}); why:[/red]")
    for reason, n in reasons:
        console.print(f"  {n} × {reason}", highlight=False)
    return True


def _print_results(study: optuna.Study, spec: SweepSpec) -> None:
    from regcore.confirm import confirmation
    from regcore.sweeps.results import best_rows

    rows = best_rows(study)
    if not rows:
        console.print("No trial has completed yet.")
        return
    names = [o.metric for o in spec.objectives]
    searched = list(dict.fromkeys(k for r in rows for k in r.params if k != "lr"))
    table = Table(title=f"{study.study_name}: best trials (one seed each)")
    table.add_column("", no_wrap=True)
    table.add_column("#", justify="right")
    for column in ("λ₁", "λ₂", "lr", *searched, *names, "zeros"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        table.add_row(
            f"{r.label}: {r.method}" if not r.baseline else r.label,
            str(r.number),
            f"{r.l1:.2g}",
            f"{r.l2:.2g}",
            f"{r.lr:.2g}",
            *(_shown(r.params.get(k)) for k in searched),
            *(f"{v:.4g}" for v in r.values),
            "–" if r.sparsity is None else f"{r.sparsity:.0%}",
        )
    console.print(table)
    found = confirmation(study) if not spec.is_multi_objective else None
    if found is None:
        how = "confirm: {seeds: 5, top: 3}" if not spec.confirm.enabled else "its confirmation"
        console.print(
            "[yellow]unconfirmed[/yellow]: each row is one seed's result, which cannot tell a "
            f"gain from noise; no recommendation without {how}.",
            highlight=False,
        )
        return
    _print_confirmation(study.study_name, found)


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "–" if value is None else str(value)


def _print_confirmation(name: str, found: Confirmation) -> None:
    searched = list(dict.fromkeys(k for s in found.settings for k in s.params if k != "lr"))
    table = Table(title=f"{name}: confirmation (new seeds, not part of the search)")
    columns = ("", "class", "λ₁", "λ₂", "lr", *searched, "mean ± sd", "n", "wins", "p")
    for column in columns:
        table.add_column(column, justify="left" if column in ("", "class") else "right")
    for s in found.settings:
        p = "–" if s.p_vs_baseline is None else f"{s.p_vs_baseline:.2g}"
        wins = f"{s.wins}/{len(s.gains)}" if s.gains else "–"
        table.add_row(
            s.label,
            s.method_class,
            f"{s.l1:.2g}",
            f"{s.l2:.2g}",
            f"{s.lr:.2g}",
            *(_shown(s.params.get(k)) for k in searched),
            f"{s.mean:.4g} ± {s.sd:.2g}",
            str(s.n),
            wins,
            p,
        )
    console.print(table)
    console.print(
        "wins: seeds on which a setting beat its λ = 0 twin (same seed, same other values); "
        "p: one-sided paired t-test, Holm-adjusted.",
        highlight=False,
    )
    console.print(found.verdict, highlight=False)
    chosen = found.recommended
    if chosen is not None and not found.pending:
        lines = "\n  ".join(chosen.paste())
        console.print(f"In your training script:\n  [bold]{lines}[/bold]", highlight=False)
