"""``/metrics``: Prometheus' text format, open like the health probes (counts only)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from regcore.service.errors import ERROR_RESPONSES
from regcore.service.metrics import ServiceMetrics

# Open like the probes: of the shared errors only the body limit's 400.
router = APIRouter(tags=["health"], responses={400: ERROR_RESPONSES[400]})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def read_metrics(request: Request) -> Response:
    """Prometheus metrics: sweeps by status, trials by state, queue depth, latencies."""
    metrics: ServiceMetrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
