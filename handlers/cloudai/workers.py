"""CloudAI's worker operations: the runtime's worker nodes with their resources.

Every figure comes from `runtime/services/workers.py` (one read of the store per call), so
every gateway process answers the same and `allocated + available == total` per worker.
"""

from __future__ import annotations

from generated.cloudai import models
from handlers.cloudai.views import worker, worker_detail
from runtime.api.context import RequestContext
from runtime.services.workers import get_worker as find_worker
from runtime.services.workers import list_workers as all_workers


async def list_workers(request: models.ListWorkersInput, ctx: RequestContext) -> models.WorkerList:
    views = await ctx.services.blocking.run(all_workers, ctx.services.store)
    return models.WorkerList(workers=[worker(view) for view in views])


async def get_worker(request: models.GetWorkerInput, ctx: RequestContext) -> models.WorkerDetail:
    """404 WORKER_NOT_FOUND for an unknown id (services' WorkerNotFound, mapped by the gateway)."""
    view = await ctx.services.blocking.run(find_worker, ctx.services.store, request.worker_id)
    return worker_detail(view, ctx.tenant_id)
