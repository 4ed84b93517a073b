"""One router per resource, each with its own prefix and tags."""

from service.routes import health, methods, metrics, sweeps, workers, workloads

ROUTERS = (
    sweeps.router,
    workloads.router,
    methods.router,
    workers.router,
    health.router,
    metrics.router,
)

__all__ = ["ROUTERS"]
