"""Webhook URLs at submit: one whose host webhooks may not reach (loopback, link-local,
private, ...) is refused with 422, naming the field and ``REGSWEEP_WEBHOOK_ALLOW``.

This is early feedback; the guard that matters runs again at every delivery, since DNS
answers change (:mod:`regcore.notify.targets`). A host that does not resolve from the
service now is let through for that reason.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import Request

from regcore.notify.targets import WebhookTargets
from regcore.service.errors import ApiError, Problem


def refuse_unreachable_webhooks(request: Request, urls: Iterable[tuple[str, str | None]]) -> None:
    """422 listing every ``(field, url)`` whose target the app's rule refuses."""
    targets: WebhookTargets = request.app.state.webhook_targets
    refusals: dict[str, str | None] = {}  # a batch's sweeps often share one URL: resolve once
    problems = []
    for field, url in urls:
        if url is None:
            continue
        if url not in refusals:
            refusals[url] = targets.refusal(url)
        message = refusals[url]
        if message is not None:
            problems.append(Problem(field=field, message=message))
    if problems:
        first = problems[0]
        detail = first.message if len(problems) == 1 else f"{len(problems)} webhook URLs refused"
        raise ApiError(422, detail, field=first.field, problems=problems)
