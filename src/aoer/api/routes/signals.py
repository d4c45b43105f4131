"""Bulk signal ingestion: validate every row, upsert all or none, optionally queue the tenants."""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends

from aoer import queue
from aoer.api.auth import Principal, require_roles
from aoer.api.context import Context
from aoer.api.dealer_rows import check_org_rows, check_own_rows
from aoer.api.limits import require_json
from aoer.api.responses import AUTHENTICATED, WITH_JSON_BODY, error_responses
from aoer.api.schemas import SignalBatch, SignalsOut
from aoer.constants import DEFAULT_PRIORITY
from aoer.scoring.rows import FieldError
from aoer.scoring.signals import SignalRow, SignalValidationError, upsert_signals

logger = logging.getLogger(__name__)

router = APIRouter(tags=["signals"])


@router.post(
    "/api/signals",
    response_model=SignalsOut,
    responses=error_responses(*AUTHENTICATED, *WITH_JSON_BODY),
    summary="Upsert up to 10,000 signal rows (idempotent per dealerId and date)",
    description="All rows or none. A 422 lists every problem as `{row, field, message}`, "
    "`row` being the index in `signals` (counting from 0). A row replaces the whole day "
    "(DESIGN §2): a field left out of it is stored empty for that day, whatever it held; send "
    "every component you have in one row. Tenant tokens may send only their "
    "own rows, organisations the rows of their own tenants. "
    "`enqueue` (default true) queues the affected tenants at medium priority.",
)
async def upsert(
    principal: Annotated[Principal, Depends(require_roles("admin", "service", "org", "tenant"))],
    _: Annotated[None, Depends(require_json)],
    body: SignalBatch,
    ctx: Context,
) -> SignalsOut:
    rows = body.signals
    dealer_ids = [row.dealer_id for row in rows]
    check_own_rows(principal, dealer_ids)
    _check_unique_days(rows)
    if not rows:
        return SignalsOut(upserted=0, tenants=0, queued=0)
    async with ctx.session(principal) as session, session.transaction():
        await check_org_rows(principal, session, dealer_ids)
        # One transaction: the rows and the jobs they call for commit together.
        result = await upsert_signals(session, rows)
        jobs = (
            await queue.enqueue_many(session, result.tenant_ids, DEFAULT_PRIORITY)
            if body.enqueue
            else []
        )
    logger.info(
        "%d signal rows for %d tenants upserted by %s (%d queued)",
        result.upserted,
        len(result.tenant_ids),
        principal.subject,
        len(jobs),
        extra={"action": "signals_upsert"},
    )
    return SignalsOut(upserted=result.upserted, tenants=len(result.tenant_ids), queued=len(jobs))


def _check_unique_days(rows: list[SignalRow]) -> None:
    seen: dict[tuple[object, object], int] = {}
    errors: list[FieldError] = []
    for index, row in enumerate(rows):
        key = (row.dealer_id, row.date)
        if key in seen:
            errors.append(
                FieldError(index, "date", f"duplicates row {seen[key]} (same dealer and date)")
            )
        else:
            seen[key] = index
    if errors:
        raise SignalValidationError(errors)
