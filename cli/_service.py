"""Commands that run the service's parts: ``serve``, ``worker``, ``dashboard``, ``db upgrade``.

Settings come from the invocation (:func:`regcore.cli._app.settings`) and go down as plain
arguments.
"""

from __future__ import annotations

import multiprocessing
import signal
from typing import TYPE_CHECKING, Annotated

import typer

from regcore.cli._app import app, console, load_plugins, settings
from regcore.cli._extras import require, require_driver
from regcore.settings import Settings

if TYPE_CHECKING:
    from regcore.worker.options import WorkerOptions

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
db = typer.Typer(help="The database: regsweep's tables and Optuna's.", no_args_is_help=True)
app.add_typer(db, name="db")


@db.command("upgrade")
def db_upgrade() -> None:
    """Create or upgrade regsweep's and Optuna's tables in REGSWEEP_DATABASE_URL."""
    import sqlalchemy as sa

    from regcore.store import create_engine_for, current_revision, head_revision, upgrade_database

    url = settings().database_url
    require_driver(url, command="db upgrade")
    engine = create_engine_for(url, pool_size=1)
    try:
        before = current_revision(engine)
        upgrade_database(url)
    finally:
        engine.dispose()
    head, shown = head_revision(), sa.make_url(url).render_as_string(hide_password=True)
    change = "up to date" if before == head else f"upgraded from {before or 'nothing'}"
    console.print(f"database at revision {head} ({change}): {shown}")


def _reach_database(url: str) -> None:
    """Connect once (upgrading its tables, as every worker does): a database that cannot be
    reached then ends the command with the app's one line, before any child process."""
    from regcore.store import upgrade_database

    upgrade_database(url)


def _worker_options(
    config: Settings, device: str, *, threads: int | None = None, started_with: int = 1
) -> WorkerOptions:
    from regcore.worker.options import WorkerOptions

    return WorkerOptions.from_settings(
        config, device=device, threads=threads, started_with=started_with
    )


ThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Torch threads per worker process. Default: OMP_NUM_THREADS if set, else this "
        "machine's cores divided among its workers (docs/workers.md).",
    ),
]


@app.command()
def worker(
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or cuda:N.")] = "auto",
    gpus: Annotated[
        str | None, typer.Option(help="'all': one worker process per visible GPU.")
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes on this machine, sharing its cores."),
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """Claim and run trials of queued sweeps until stopped (SIGTERM/Ctrl-C: finish, exit 0)."""
    config = settings()
    require_driver(config.database_url, command="worker")
    load_plugins()  # fail here, naming the plug-in, rather than in every worker process
    if gpus is not None and workers is not None:
        console.print(
            f"[red]--gpus all starts one worker per GPU; leave out --workers (got "
            f"--workers {workers})[/red]"
        )
        raise typer.Exit(2)
    if gpus is None and workers is None:
        from regcore.worker.processes import worker_process_main

        worker_process_main(_worker_options(config, device, threads=threads))
        return
    if gpus is not None:
        devices = _gpus(gpus)
    else:
        assert workers is not None
        devices = [device] * workers
    from regcore.worker.processes import run_worker_processes

    _reach_database(config.database_url)  # here, once, rather than a traceback per process
    options = [
        _worker_options(config, d, threads=threads, started_with=len(devices)) for d in devices
    ]
    console.print(f"starting {len(options)} worker processes ({', '.join(devices)})")
    if run_worker_processes(options).failed:
        raise typer.Exit(1)


def _gpus(gpus: str) -> list[str]:
    """The devices of ``--gpus all``: one per visible GPU."""
    if gpus != "all":
        console.print(f"[red]--gpus takes 'all', but got {gpus!r}[/red]")
        raise typer.Exit(2)
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        console.print("[red]--gpus all: no CUDA device is visible; use --device cpu[/red]")
        raise typer.Exit(2)
    return [f"cuda:{index}" for index in range(count)]


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run a worker in a child process.")
    ] = False,
) -> None:
    """Run the REST API (and, with --with-worker, a worker beside it)."""
    require("service", command="serve")
    config = settings()
    require_driver(config.database_url, command="serve")
    load_plugins()
    from regcore.service.main import is_loopback
    from regcore.service.main import serve as serve_api
    from regcore.worker.processes import worker_process_main

    if config.api_tokens is None and not is_loopback(host):
        console.print(
            f"[bold red]WARNING: authentication is off (REGSWEEP_API_TOKENS is unset) and the "
            f"service listens on {host}: anyone who can reach it can submit and delete "
            f"sweeps.[/bold red] Set REGSWEEP_API_TOKENS=name:token,... or --host 127.0.0.1."
        )
    child = None
    if with_worker:
        _reach_database(config.database_url)  # before the worker's process starts
        context = multiprocessing.get_context("spawn")
        child = context.Process(
            target=worker_process_main,
            args=(_worker_options(config, "auto"),),
            name="regsweep-worker",
        )
        child.start()
    # Uvicorn handles SIGINT/SIGTERM, then raises the signal again once it has shut down; a
    # handler of ours takes that second one, so the worker below is stopped and waited for
    # rather than left running with this process gone.
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda n, _f: caught.append(n)) for s in _STOP_SIGNALS}
    try:
        serve_api(config, host=host, port=port)
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
    require("service", command="dashboard")
    config = settings()
    require_driver(config.database_url, command="dashboard")
    import optuna
    import optuna_dashboard

    from regcore.store import create_storage, upgrade_database

    upgrade_database(config.database_url)
    config.artifact_dir.mkdir(parents=True, exist_ok=True)
    store = optuna.artifacts.FileSystemArtifactStore(str(config.artifact_dir))
    console.print(f"optuna-dashboard on http://{host}:{port} (artifacts: {config.artifact_dir})")
    optuna_dashboard.run_server(
        create_storage(config.database_url), host=host, port=port, artifact_store=store
    )
