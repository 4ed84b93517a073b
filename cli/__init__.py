"""The ``regsweep`` command: local sweeps, the service, workers, and the REST client."""

# The command modules register their commands on the app when imported.
from regcore.cli import _batch, _client, _local, _results, _service  # noqa: F401
from regcore.cli._app import app

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
