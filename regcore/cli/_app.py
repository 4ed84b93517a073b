"""The ``regsweep`` Typer app and its console, shared by the command modules."""

from __future__ import annotations

import threading
from collections.abc import Callable

import typer
from rich.console import Console, RenderableType
from rich.live import Live

app = typer.Typer(
    help="Sweeps over L1/L2 regularization for PyTorch, and the regularizer core they use.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


@app.callback()
def _root() -> None:
    """Sweeps over L1/L2 regularization for PyTorch, and the regularizer core they use."""


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
