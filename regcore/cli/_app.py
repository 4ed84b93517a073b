"""The ``regsweep`` Typer app, its console, and the settings of one invocation.

The root command reads :class:`~regcore.settings.Settings` from the environment once; every
command takes them from :func:`settings` and passes plain values down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import typer
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.live import Live

from regcore.settings import Settings

app = typer.Typer(
    help="Sweeps over L1/L2 regularization for PyTorch, and the regularizer core they use.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


_settings: list[Settings] = []  # this invocation's, read by the root command


@app.callback()
def _root() -> None:
    """Sweeps over L1/L2 regularization for PyTorch, and the regularizer core they use."""
    try:
        _settings[:] = [Settings()]
    except ValidationError as exc:
        for error in exc.errors():
            name = f"REGSWEEP_{'_'.join(str(p) for p in error['loc']).upper()}"
            console.print(f"[red]{name}: {error['msg']}, but got {error['input']!r}[/red]")
        raise typer.Exit(2) from None


def settings() -> Settings:
    """The settings of this invocation (read once, by the root command)."""
    assert _settings, "settings() is for commands run through the regsweep app"
    return _settings[0]


def load_plugins() -> None:
    """Import REGSWEEP_PLUGINS (for commands that read specs); exit 2 naming one that fails."""
    modules = settings().plugin_modules
    if not modules:
        return
    from regcore.workloads import WorkloadPluginError, load_plugin_modules

    try:
        load_plugin_modules(modules)
    except WorkloadPluginError as exc:
        console.print(str(exc), style="red", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


def show(fetch: Callable[[], RenderableType], *, watch: bool) -> None:
    """Print what ``fetch`` makes; with ``watch``, keep it fresh every 2 s until Ctrl-C."""
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
