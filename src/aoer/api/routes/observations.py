"""Answer-engine observations (DESIGN §14): bulk ingest, and the per-engine window metrics."""

import logging
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends

from aoer import queue
from aoer.api.auth import (
    TENANT_QUERY_DOC,
    Principal,
    TenantAccess,
    require_roles,
    tenant_query_access,
)
from aoer.api.context import Context
from aoer.api.dealer_rows import check_org_rows, check_own_rows
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import (
    CitedUrlOut,
    CompetitorOut,
    EngineMetricsOut,
    EngineOut,
    EnginesOut,
    ObservationBatch,
    ObservationsOut,
    WindowOut,
)
from aoer.constants import DEFAULT_PRIORITY
from aoer.errors import UnknownTenant
from aoer.scoring.observations import ingest_observations
from aoer.store.observations import EngineWindow

logger = logging.getLogger(__name__)

router = APIRouter(tags=["observations"])

TenantReader = Annotated[TenantAccess, Depends(tenant_query_access("admin", "tenant"))]


@router.post(
    "/api/observations",
    response_model=ObservationsOut,
    responses=error_responses(*AUTHENTICATED, *WITH_JSON_BODY),
    summary="Upsert up to 10,000 answer-engine observations "
    "(idempotent per dealerId, date, engine and prompt)",
    description="All rows or none. A 422 lists every problem as `{row, field, message}`, `row` "
    "being the index in `observations` (counting from 0). Tenant tokens may send only their "
    "own rows, organisations their own tenants' rows. `deriveSignals` (default true) fills "
    "each observed day's `aeo` = round(100 × "
    "visibility, 2) and `geo` = round(100 × citation rate, 2) over that day's observations of "
    "every engine, unless the day's value was supplied directly (POST /api/signals, `aoer "
    "signals import`), and queues the tenants at medium priority.",
)
async def upsert(
    principal: Annotated[Principal, Depends(require_roles("admin", "service", "org", "tenant"))],
    _: Annotated[None, Depends(require_json)],
    body: ObservationBatch,
    ctx: Context,
) -> ObservationsOut:
    rows = body.observations
    dealer_ids = [row.dealer_id for row in rows]
    check_own_rows(principal, dealer_ids)
    if not rows:
        return ObservationsOut(upserted=0, tenants=0, derived=0, queued=0)
    async with ctx.session(principal) as session, session.transaction():
        await check_org_rows(principal, session, dealer_ids)
        # One transaction: the observations, the signals derived and the jobs commit together.
        staged = (row.staged(number) for number, row in enumerate(rows))
        result = await ingest_observations(session, staged, derive=body.derive_signals)
        jobs = await queue.enqueue_many(session, result.derived, DEFAULT_PRIORITY)
    logger.info(
        "%d observations for %d tenants upserted by %s (%d derived, %d queued)",
        result.upserted,
        len(result.tenant_ids),
        principal.subject,
        len(result.derived),
        len(jobs),
        extra={"action": "observations_upsert"},
    )
    return ObservationsOut(
        upserted=result.upserted,
        tenants=len(result.tenant_ids),
        derived=len(result.derived),
        queued=len(jobs),
    )


@router.get(
    "/api/aoer/engines",
    response_model=EnginesOut,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    openapi_extra=TENANT_QUERY_DOC,
    summary="A tenant's visibility per answer engine, share of voice and cited pages",
    description="Over the score's window (CURRENT_DATE - 30 … CURRENT_DATE): per engine "
    "(by name) and overall `answers`, `visibility` = mentioned / answers, `citationRate` = "
    "cited / answers, `avgPosition` over mentioned answers with a position, `shareOfVoice` = "
    "own mentions / (own mentions + competitor mentions), `sentiment` (mean). `competitors`: "
    "the 10 most mentioned (answers naming each, once per answer; ties by name) with their "
    "share of voice; `topCitedUrls`: the 10 pages cited in most answers (ties by URL). Ratios "
    "are rounded to 4 places, `avgPosition` and `sentiment` to 2 (half away from zero); null "
    "when the denominator is 0.",
)
async def engines(access: TenantReader, ctx: Context) -> EnginesOut:
    async with ctx.session(access.principal) as session:
        if not await session.tenants.exists(access.tenant_id):
            raise UnknownTenant(f"unknown tenant {access.tenant_id}")
        report = await session.observations.report(access.tenant_id)
    overall = report.overall
    return EnginesOut(
        tenant_id=access.tenant_id,
        window=WindowOut.model_validate({"from": overall.window_from, "to": overall.window_to}),
        overall=EngineMetricsOut.model_validate(_metrics(overall)),
        engines=[
            EngineOut.model_validate({"engine": e.engine, **_metrics(e)}) for e in report.engines
        ],
        competitors=[
            CompetitorOut(
                name=c.name, mentions=c.mentions, share_of_voice=_number(c.share_of_voice)
            )
            for c in report.competitors
        ],
        top_cited_urls=[CitedUrlOut(url=u.url, count=u.count) for u in report.cited_urls],
    )


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _metrics(window: EngineWindow) -> dict[str, object]:
    return {
        "answers": window.answers,
        "visibility": _number(window.visibility),
        "citation_rate": _number(window.citation_rate),
        "avg_position": _number(window.avg_position),
        "share_of_voice": _number(window.share_of_voice),
        "sentiment": _number(window.sentiment),
    }
