"""Commands that run the service's parts: ``serve``, ``worker``, ``db upgrade``.

Settings are read here (the entry point) and passed down as plain arguments.
"""

from __future__ import annotations

import multiprocessing
from typing import TYPE_CHECKING, Annotated

import typer

from regcore.cli._app import app, console
from regcore.settings import Settings

if TYPE_CHECKING:
    from worker.daemon import WorkerOptions

db = typer.Typer(help="The database: regsweep's tables and Optuna's.", no_args_is_help=True)
app.add_typer(db, name="db")


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade regsweep's and Optuna's tables in REGSWEEP_DATABASE_URL."""
    from regcore.store import head_revision, upgrade_database

    settings = Settings()
    upgrade_database(settings.database_url)
    console.print(f"database at revision {head_revision()}: {settings.database_url}")


def _worker_options(settings: Settings, device: str) -> WorkerOptions:
    from worker.daemon import WorkerOptions

    return WorkerOptions(
        database_url=settings.database_url,
        device=device,
        data_dir=settings.data_dir,
        heartbeat_s=settings.heartbeat_s,
        grace_s=settings.grace_s,
        max_retries=settings.max_retries,
    )


@app.command()
def worker(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    gpus: Annotated[
        str | None, typer.Option(help="'all': one worker process per visible GPU.")
    ] = None,
) -> None:
    """Claim and run trials of queued sweeps until stopped (SIGTERM/Ctrl-C: finish, exit 0)."""
    import torch

    from worker.daemon import worker_process_main

    settings = Settings()
    if gpus is None:
        worker_process_main(_worker_options(settings, device))
        return
    if gpus != "all":
        console.print(f"[red]--gpus takes 'all', but got {gpus!r}[/red]")
        raise typer.Exit(2)
    count = torch.cuda.device_count()
    if count == 0:
        console.print("[red]--gpus all: no CUDA device is visible; use --device cpu[/red]")
        raise typer.Exit(2)
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(
            target=worker_process_main,
            args=(_worker_options(settings, f"cuda:{index}"),),
            name=f"regsweep-worker-cuda{index}",
        )
        for index in range(count)
    ]
    for process in processes:
        process.start()
    console.print(f"started {count} workers, one per GPU")
    try:
        for process in processes:
            process.join()
    except KeyboardInterrupt:
        for process in processes:  # they got the same SIGINT; wait for them to finish
            process.join()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run a worker in a child process.")
    ] = False,
) -> None:
    """Run the REST API (and, with --with-worker, a worker beside it)."""
    from service.main import is_loopback
    from service.main import serve as serve_api
    from worker.daemon import worker_process_main

    settings = Settings()
    if settings.api_tokens is None and not is_loopback(host):
        console.print(
            f"[bold red]WARNING: authentication is off (REGSWEEP_API_TOKENS is unset) and the "
            f"service listens on {host}: anyone who can reach it can submit and delete "
            f"sweeps.[/bold red] Set REGSWEEP_API_TOKENS=name:token,... or --host 127.0.0.1."
        )
    child = None
    if with_worker:
        context = multiprocessing.get_context("spawn")
        child = context.Process(
            target=worker_process_main,
            args=(_worker_options(settings, "auto"),),
            name="regsweep-worker",
        )
        child.start()
    try:
        serve_api(settings, host=host, port=port, read_only_open=settings.read_only_open)
    finally:
        if child is not None:
            child.terminate()  # SIGTERM: the worker finishes its trial within the grace period
            child.join()
