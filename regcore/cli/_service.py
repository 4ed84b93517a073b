"""Commands that run the service's parts: ``serve``, ``worker``, ``db upgrade``.

Settings are read here (the entry point) and passed down as plain arguments.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from regcore.cli._app import app, console
from regcore.settings import Settings

if TYPE_CHECKING:
    from worker.daemon import WorkerOptions

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
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
        artifact_dir=settings.artifact_dir,
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
    devices = [f"cuda:{index}" for index in range(count)]
    failed = run_worker_processes([_worker_options(settings, d) for d in devices])
    if failed:
        raise typer.Exit(1)


def run_worker_processes(options: list[WorkerOptions]) -> int:
    """One worker process per entry, until all have stopped; how many exited with an error.

    SIGINT/SIGTERM reach this process (``docker stop`` sends SIGTERM to it alone): each is
    passed on to the workers, which finish their trials within the grace period and exit.
    """
    from worker.daemon import worker_process_main

    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=worker_process_main, args=(o,), name=f"regsweep-worker-{o.device}")
        for o in options
    ]

    def forward(signum: int, _frame: object) -> None:
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    previous = {s: signal.signal(s, forward) for s in _STOP_SIGNALS}
    try:
        for process in processes:
            process.start()
        devices = ", ".join(o.device for o in options)
        console.print(f"started {len(processes)} worker processes ({devices})")
        for process in processes:
            process.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return sum(process.exitcode != 0 for process in processes)


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
    # Uvicorn handles SIGINT/SIGTERM, then raises the signal again once it has shut down; a
    # handler of ours takes that second one, so the worker below is stopped and waited for
    # rather than left running with this process gone.
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda n, _f: caught.append(n)) for s in _STOP_SIGNALS}
    try:
        serve_api(settings, host=host, port=port, read_only_open=settings.read_only_open)
    finally:
        if child is not None:
            child.terminate()  # SIGTERM: the worker finishes its trial within the grace period
            child.join()
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@app.command()
def dashboard(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8080,
) -> None:
    """Run optuna-dashboard on REGSWEEP_DATABASE_URL, with REGSWEEP_ARTIFACT_DIR's artifacts."""
    import optuna
    import optuna_dashboard

    from regcore.store import create_storage, upgrade_database

    settings = Settings()
    upgrade_database(settings.database_url)
    settings.artifact_dir.mkdir(parents=True, exist_ok=True)
    store = optuna.artifacts.FileSystemArtifactStore(str(settings.artifact_dir))
    console.print(f"optuna-dashboard on http://{host}:{port} (artifacts: {settings.artifact_dir})")
    optuna_dashboard.run_server(
        create_storage(settings.database_url), host=host, port=port, artifact_store=store
    )
