"""Liveness, readiness (database reachable, migrations current) and Prometheus metrics."""

import logging

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST

from aoer.api.context import Context
from aoer.api.schemas import HealthOut, ReadyOut
from aoer.errors import DatabaseError

logger = logging.getLogger(__name__)

router = APIRouter(tags=["operations"])

READY_TIMEOUT_S = 2.0
_HEALTHY = b'{"status":"ok"}'


@router.get(
    "/healthz",
    response_model=HealthOut,
    summary="Liveness: the process answers (no database call)",
)
async def healthz() -> Response:
    return Response(content=_HEALTHY, media_type="application/json")


@router.get(
    "/readyz",
    response_model=ReadyOut,
    responses={503: {"model": ReadyOut, "description": "Not ready; `error` says why"}},
    summary="Readiness: the database answers and every migration is applied",
)
async def readyz(ctx: Context) -> JSONResponse:
    try:
        pending = await ctx.store.pending_migrations(timeout_s=READY_TIMEOUT_S)
    except DatabaseError as exc:
        logger.warning("not ready: database unavailable (%s)", exc)
        body = ReadyOut(
            error="the database is unavailable",
            status="not ready",
            database="unavailable",
            migrations="unknown",
        )
        return _ready_response(body, 503)
    if pending:
        body = ReadyOut(
            error=f"{len(pending)} migrations are pending: run `aoer migrate`",
            status="not ready",
            database="ok",
            migrations="pending",
            pending_migrations=pending,
        )
        return _ready_response(body, 503)
    return _ready_response(ReadyOut(status="ready", database="ok", migrations="current"), 200)


def _ready_response(body: ReadyOut, status: int) -> JSONResponse:
    return JSONResponse(body.model_dump(by_alias=True, exclude_none=True), status_code=status)


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        }
    },
    summary="Prometheus metrics",
)
async def metrics(ctx: Context) -> Response:
    try:
        async with ctx.store.session(timeout_s=READY_TIMEOUT_S) as session:
            ctx.metrics.set_queue_depth(await session.jobs.depth())
        ctx.metrics.database_up.set(1)
    except DatabaseError as exc:
        logger.warning("metrics: cannot read the queue (%s)", exc)
        ctx.metrics.database_up.set(0)
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
