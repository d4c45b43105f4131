"""The seed's endpoints: queue a recompute, queue status, summary, cron trigger, score history."""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from aoer import queue
from aoer.api.auth import (
    TENANT_QUERY_DOC,
    Principal,
    TenantAccess,
    cron_caller,
    ensure_tenant_access,
    require_roles,
    tenant_query_access,
)
from aoer.api.context import Context, api_context
from aoer.api.limits import require_json
from aoer.api.markers import trend_markers
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import (
    DEFAULT_HISTORY_DAYS,
    MAX_HISTORY_DAYS,
    CronOut,
    HistoryOut,
    HistoryPoint,
    MarkerOut,
    QueuedJobOut,
    QueueRequest,
    QueueStatusOut,
    SummaryOut,
    TenantQueueOut,
    plain_numbers,
)
from aoer.api.summaries import summary_body
from aoer.api.trail import audit_entry
from aoer.errors import UnknownTenant

logger = logging.getLogger(__name__)

router = APIRouter(tags=["aoer"])

Enqueuer = Annotated[Principal, Depends(require_roles("admin", "service", "org", "tenant"))]
TenantReader = Annotated[TenantAccess, Depends(tenant_query_access("admin", "tenant"))]
JsonBody = Annotated[None, Depends(require_json)]


@router.post(
    "/api/aoer/queue",
    status_code=202,
    response_model=QueuedJobOut,
    responses=error_responses(*AUTHENTICATED, 404, 409, *WITH_JSON_BODY),
    summary="Queue a tenant for recompute",
    description="Coalesces with the tenant's waiting job (its priority rises to the higher one).",
)
async def queue_tenant(
    principal: Enqueuer, _: JsonBody, body: QueueRequest, ctx: Context
) -> QueuedJobOut:
    await ensure_tenant_access(principal, body.tenant_id)
    job = await ctx.enqueue(principal, body.tenant_id, body.priority)
    return QueuedJobOut(
        success=True,
        job_id=job.id,
        tenant_id=job.tenant_id,
        priority=job.priority,
        status=job.status,
        coalesced=job.coalesced,
    )


@router.get(
    "/api/aoer/queue",
    response_model=TenantQueueOut,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    openapi_extra=TENANT_QUERY_DOC,
    summary="A tenant's jobs by status (`queued` reported as pending)",
)
async def queue_status(access: TenantReader, ctx: Context) -> TenantQueueOut:
    async with ctx.session(access.principal) as session:
        statuses = await session.jobs.statuses([access.tenant_id])
    status = statuses.get(access.tenant_id)
    if status is None:
        raise UnknownTenant(f"unknown tenant {access.tenant_id}")
    return TenantQueueOut(tenant_id=access.tenant_id, queue_status=QueueStatusOut.of(status))


@router.get(
    "/api/aoer/summary",
    response_model=SummaryOut,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    openapi_extra=TENANT_QUERY_DOC,
    summary="A tenant's AOER summary with grade and risk level",
    description="Cached for AOER_CACHE_TTL seconds and evicted the moment a recompute commits.",
)
async def summary(request: Request, access: TenantReader) -> Response:
    # The context is taken off the request, not through `Context`: one dependency less on
    # the API's hottest read.
    body = await summary_body(api_context(request), access.principal, access.tenant_id)
    return Response(content=body, media_type="application/json")


@router.get(
    "/api/aoer/cron",
    response_model=CronOut,
    responses=error_responses(*AUTHENTICATED),
    summary="Queue every active tenant at low priority",
    description="For external schedulers: `Authorization: Bearer $CRON_SECRET`, "
    "or an admin or service token.",
)
async def cron(
    request: Request, caller: Annotated[Principal, Depends(cron_caller)], ctx: Context
) -> CronOut:
    logger.info(
        "[AOER] Cron triggered over HTTP by %s", caller.subject, extra={"action": "cron_http"}
    )
    async with ctx.session(caller) as session:
        queued = await queue.trigger_cron(session, ctx.settings.tick_chunk)
        await session.audit.record(
            audit_entry(request, caller, "cron.trigger", details={"queued": queued})
        )
    return CronOut(success=True, queued=queued)


@router.get(
    "/api/aoer/history",
    response_model=HistoryOut,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    openapi_extra=TENANT_QUERY_DOC,
    summary="A tenant's score history (one point per recompute, oldest first)",
)
async def history(
    access: TenantReader,
    ctx: Context,
    days: Annotated[
        int, Query(ge=1, le=MAX_HISTORY_DAYS, description="How many days back")
    ] = DEFAULT_HISTORY_DAYS,
) -> HistoryOut:
    async with ctx.session(access.principal) as session:
        if not await session.tenants.exists(access.tenant_id):
            raise UnknownTenant(f"unknown tenant {access.tenant_id}")
        points = await session.scores.history(access.tenant_id, days)
        markers = await trend_markers(session, access.tenant_id, days)
    return HistoryOut(
        tenant_id=access.tenant_id,
        days=days,
        history=[
            HistoryPoint(
                created_at=p.created_at,
                aoer_score=float(p.aoer_score),
                visibility_risk=float(p.visibility_risk),
                grade=p.grade,
                risk_level=p.risk_level,
                metrics=plain_numbers(p.metrics),
                priority=p.priority,
            )
            for p in points
        ],
        markers=[MarkerOut(at=m.at, kind=m.kind, label=m.label, detail=m.detail) for m in markers],
    )
