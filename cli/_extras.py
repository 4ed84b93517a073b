"""Commands that need an optional part of regsweep say which extra installs it.

``pip install regsweep`` is the core and local sweeps; the service, the dashboard, reports
and the PostgreSQL driver are extras (pyproject.toml). A command whose extra is missing exits
2 with one line naming it, rather than with an ImportError's traceback.
"""

from __future__ import annotations

import importlib.util

import typer

from regcore.cli._app import console

# The modules each extra brings, as pyproject.toml's optional dependencies install them.
EXTRAS: dict[str, tuple[str, ...]] = {
    "service": ("fastapi", "uvicorn", "prometheus_client", "optuna_dashboard"),
    "reports": ("plotly",),
    "postgres": ("psycopg",),
}


def require(extra: str, *, command: str) -> None:
    """Exit 2 naming ``extra`` when a module it brings is missing."""
    missing = [m for m in EXTRAS[extra] if importlib.util.find_spec(m) is None]
    if missing:
        console.print(
            f"regsweep {command} needs the {extra!r} extra ({', '.join(missing)} is "
            f"missing): pip install 'regsweep[{extra}]'",
            style="red",
            markup=False,  # [service] is not a style
            highlight=False,
            soft_wrap=True,  # one line, however narrow the terminal
        )
        raise typer.Exit(2)


def require_driver(url: str, *, command: str) -> None:
    """Exit 2 naming the ``postgres`` extra when ``url`` is PostgreSQL and its driver is
    missing (SQLite needs nothing)."""
    import sqlalchemy as sa

    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        # Not echoed: a URL carries the database password.
        console.print("[red]the database URL is not one; write e.g. sqlite:///regsweep.db[/red]")
        raise typer.Exit(2) from None
    if backend in ("postgresql", "postgres"):  # postgres:// is read as postgresql://
        require("postgres", command=command)
