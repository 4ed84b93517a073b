"""The ``regsweep`` Typer app, its console, and the settings of one invocation.

The root command reads :class:`~regcore.settings.Settings` from the environment once; every
command takes them from :func:`settings` and passes plain values down. A database that
cannot be reached ends any command with one line naming it (password hidden) and the fix,
and exit status 1, rather than a driver's traceback.
"""

from __future__ import annotations

import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import typer
from pydantic import ValidationError
from rich.console import Console, RenderableType
from rich.live import Live

from regcore.settings import Settings


class _App(typer.Typer):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except Exception as exc:
            line = database_error(exc)
            if line is None:
                raise
            console.print(line, style="red", markup=False, highlight=False, soft_wrap=True)
            raise SystemExit(1) from None


app = _App(
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


# -- a database that cannot be reached --------------------------------------------------------

# What the driver says (lower case) → what to do about it.
_FIXES = (
    ("does not exist", "create it (createdb NAME, or CREATE DATABASE) or fix the URL"),
    ("password authentication failed", "check the user and password in the URL"),
    ("authentication", "check the user and password in the URL"),
    ("unable to open database file", "check that its directory exists and is writable"),
    ("could not translate host name", "check the host name in the URL"),
    ("name or service not known", "check the host name in the URL"),
    ("timeout", "check that the server is up and reachable from here (firewall, VPN)"),
    (
        "too many clients",
        "every connection the server allows (max_connections) is taken: a worker holds up to "
        "2 and the service up to 16, so raise max_connections to at least 2 × workers + 16 "
        "+ superuser_reserved_connections, or run fewer workers "
        "(docs/workers.md)",
    ),
)
_ANY = "check that the server is running and reachable at the URL's host and port"


def database_error(exc: BaseException) -> str | None:
    """One line for a failure to connect to the database (in ``exc`` or what caused it):
    the URL with its password hidden, the driver's reason and the fix; None for any other
    error, which keeps its traceback."""
    failure = next((e for e in _chain(exc) if _is_connect_failure(e)), None)
    if failure is None:
        return None
    reason = _reason(failure)
    fix = next((f for key, f in _FIXES if key in reason.lower()), _ANY)
    where = "--storage" if _storage_option() else "REGSWEEP_DATABASE_URL"
    return f"cannot reach the database {_database_shown()}: {reason}; {fix} ({where})"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_connect_failure(exc: BaseException) -> bool:
    # Imported only if a database was used: this module stays light for every command.
    errors = sys.modules.get("sqlalchemy.exc")
    if errors is not None and isinstance(exc, errors.DBAPIError):
        # No statement: it failed opening the connection, not running SQL (a bug in SQL
        # keeps its traceback).
        return exc.statement is None
    return isinstance(exc, sqlite3.OperationalError) and "unable to open" in str(exc)


def _reason(exc: BaseException) -> str:
    """The driver's words, without SQLAlchemy's wrapping and links, on one line."""
    text = str(getattr(exc, "orig", None) or exc)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = " ".join(line for line in lines if not line.startswith("(Background"))
    reason = reason.removeprefix("connection failed: ")
    return reason if len(reason) <= 300 else reason[:297] + "..."


def _storage_option() -> str | None:
    """The ``--storage URL`` of this command line, if it gave one."""
    argv = sys.argv[1:]
    for i, arg in enumerate(argv):
        if arg == "--storage" and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith("--storage="):
            return arg.partition("=")[2]
    return None


def _database_shown() -> str:
    url = _storage_option() or (_settings[0].database_url if _settings else "")
    try:
        import sqlalchemy as sa

        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: show none of it (it may hold a password)
        return "(REGSWEEP_DATABASE_URL)"
