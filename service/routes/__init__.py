"""One router per resource, each with its own prefix and tags."""

from regcore.service.routes import batches, health, methods, metrics, sweeps, workers, workloads

ROUTERS = (
    sweeps.router,
    batches.router,
    workloads.router,
    methods.router,
    workers.router,
    health.router,
    metrics.router,
)

__all__ = ["ROUTERS"]
