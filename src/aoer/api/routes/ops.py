"""Liveness, readiness (database reachable, migrations current) and Prometheus metrics."""

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security.utils import get_authorization_scheme_param
from prometheus_client import CONTENT_TYPE_LATEST

from aoer.api.auth import secret_matches
from aoer.api.context import Context
from aoer.api.errors import Unauthorized
from aoer.api.schemas import ErrorOut, HealthOut, ReadyOut
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


_METRICS_DESCRIPTION = """\
Prometheus text format. The body is a snapshot refreshed at most every
`AOER_METRICS_REFRESH_SECONDS` (5 by default) however many clients scrape: the queue gauges are
read from the database once per refresh (`aoer_metrics_snapshot_age_seconds` says how long ago;
`aoer_database_up` is 0 when the last read failed). When `AOER_METRICS_TOKEN` is set, send it
as `Authorization: Bearer <token>`; otherwise the endpoint is open."""


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "description": "Prometheus text exposition format",
            "content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}},
        },
        401: {"model": ErrorOut, "description": "AOER_METRICS_TOKEN is set and was not sent"},
    },
    summary="Prometheus metrics",
    description=_METRICS_DESCRIPTION,
)
async def metrics(request: Request, ctx: Context) -> Response:
    expected = ctx.settings.metrics_token
    if expected is not None:
        scheme, given = get_authorization_scheme_param(request.headers.get("authorization"))
        if scheme.lower() != "bearer" or not secret_matches(given, expected):
            raise Unauthorized("/metrics needs Authorization: Bearer <AOER_METRICS_TOKEN>")
    return Response(await ctx.metrics_snapshot.body(), media_type=CONTENT_TYPE_LATEST)
