"""The ``regsweep`` Typer app and its console, shared by the command modules."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    help="Sweeps over L1/L2 regularization for PyTorch, and the regularizer core they use.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()


@app.callback()
def _root() -> None:
    """Sweeps over L1/L2 regularization for PyTorch, and the regularizer core they use."""
