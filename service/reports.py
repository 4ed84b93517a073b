"""HTML reports as responses: one self-contained file per sweep or batch (it opens offline),
built by :mod:`regcore.reports` from the studies in the database."""

from __future__ import annotations

from typing import Any

import optuna
import sqlalchemy as sa
from fastapi.responses import HTMLResponse

from regcore.reports import batch_report, sweep_report
from regcore.service import study_view
from regcore.service.errors import ApiError
from regcore.spec import redact_secrets
from regcore.store import BatchRow, SweepRow

#: The OpenAPI description of a report response.
HTML: dict[str, Any] = {
    "content": {"text/html": {"schema": {"type": "string"}}},
    "description": "a self-contained HTML report",
}


def sweep_response(
    storage: optuna.storages.BaseStorage, engine: sa.Engine, sweep: SweepRow
) -> HTMLResponse:
    """The sweep's report; 404 when it has no study, or is deleted while the report is made."""
    with study_view.reading(storage, sweep):
        study = study_view.load_for(storage, engine, sweep)
        if study is None:
            raise ApiError(404, f"sweep {sweep.id!r} has no study any more", field="sweep_id")
        html = sweep_report(
            study, spec=redact_secrets(sweep.spec), sweep_id=sweep.id, status=sweep.status
        )
    return _html(html, f"{sweep.name}.html")


def batch_response(
    storage: optuna.storages.BaseStorage, batch: BatchRow, sweeps: list[SweepRow]
) -> HTMLResponse:
    """The batch's report of the sweeps that still have a study. A sweep deleted while the
    report is made is left out by making it again (deletes are rare; twice is enough)."""
    for attempt in range(2):
        entries = [
            (study, redact_secrets(sweep.spec), sweep.status)
            for sweep in sweeps
            if (study := study_view.load(storage, sweep.study_name)) is not None
        ]
        try:
            html = batch_report(entries, batch_name=batch.name)
        except KeyError:
            gone = [s for s in sweeps if not study_view.exists(storage, s.study_name)]
            if attempt or not gone:
                raise
            sweeps = [s for s in sweeps if s not in gone]
            continue
        return _html(html, f"{batch.name}.html")
    raise AssertionError("unreachable")  # pragma: no cover


def _html(html: str, filename: str) -> HTMLResponse:
    # Inline in a browser; `curl -OJ` saves it under this name. Names are [A-Za-z0-9._-].
    return HTMLResponse(html, headers={"Content-Disposition": f'inline; filename="{filename}"'})
