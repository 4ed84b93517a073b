"""HTML reports as responses: one self-contained file per sweep or batch (it opens offline),
built by :mod:`regcore.reports` from the studies in the database."""

from __future__ import annotations

from typing import Any

import optuna
from fastapi.responses import HTMLResponse

from regcore.reports import batch_report, sweep_report
from regcore.spec import redact_secrets
from regcore.store import BatchRow, SweepRow
from service import study_view
from service.errors import ApiError

#: The OpenAPI description of a report response.
HTML: dict[str, Any] = {
    "content": {"text/html": {"schema": {"type": "string"}}},
    "description": "a self-contained HTML report",
}


def sweep_response(storage: optuna.storages.BaseStorage, sweep: SweepRow) -> HTMLResponse:
    study = study_view.load(storage, sweep.study_name)
    if study is None:
        raise ApiError(404, f"sweep {sweep.id!r} has no study any more", field="sweep_id")
    html = sweep_report(
        study, spec=redact_secrets(sweep.spec), sweep_id=sweep.id, status=sweep.status
    )
    return _html(html, f"{sweep.name}.html")


def batch_response(
    storage: optuna.storages.BaseStorage, batch: BatchRow, sweeps: list[SweepRow]
) -> HTMLResponse:
    entries = [
        (study, redact_secrets(sweep.spec), sweep.status)
        for sweep in sweeps
        if (study := study_view.load(storage, sweep.study_name)) is not None
    ]
    return _html(batch_report(entries, batch_name=batch.name), f"{batch.name}.html")


def _html(html: str, filename: str) -> HTMLResponse:
    # Inline in a browser; `curl -OJ` saves it under this name. Names are [A-Za-z0-9._-].
    return HTMLResponse(html, headers={"Content-Disposition": f'inline; filename="{filename}"'})
