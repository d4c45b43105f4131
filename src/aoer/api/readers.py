"""The API's reads (named SQL in `db/sql/api.sql`); rows become the project's dataclasses here."""

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import cast
from uuid import UUID

from aoer.api.auth import Principal
from aoer.db.pool import Connection, Pool
from aoer.db.queries import query
from aoer.queue.jobs import queue_status_from_row
from aoer.scoring.recompute import summary_from_row
from aoer.types import Grade, JsonObject, QueueStatus, RiskLevel, Summary

HISTORY_LIMIT = 5000  # points per history response
DB_ACQUIRE_TIMEOUT_S = 5.0  # a request waits this long for a pooled connection, then 503


@asynccontextmanager
async def scoped_connection(pool: Pool, principal: Principal) -> AsyncIterator[Connection]:
    """A connection that sees what the caller may see.

    Tenant tokens get a transaction acting as the non-owner role `aoer_tenant` with their
    claims in `request.jwt.claims`: Row Level Security then hides every other tenant's rows,
    even from a query that forgets its `WHERE tenant_id`. Admin and service tokens use the
    owner's connection (the API checks their role first).
    """
    async with pool.connection(timeout=DB_ACQUIRE_TIMEOUT_S) as conn:
        if principal.role != "tenant":
            yield conn
            return
        async with conn.transaction():
            await conn.execute(query("api_enter_tenant_scope"), {"claims": principal.claims_json()})
            yield conn


@dataclass(frozen=True, slots=True)
class SummaryLookup:
    tenant_found: bool
    summary: Summary | None


async def summary(conn: Connection, tenant_id: UUID) -> SummaryLookup:
    cur = await conn.execute(query("api_summary"), {"tenant_id": tenant_id})
    row = await cur.fetchone()
    if row is None:
        return SummaryLookup(False, None)
    if row["aoer_score"] is None:
        return SummaryLookup(True, None)
    return SummaryLookup(True, summary_from_row(row))


async def summaries(conn: Connection, tenant_ids: Sequence[UUID]) -> list[Summary]:
    cur = await conn.execute(query("api_summaries"), {"tenant_ids": list(tenant_ids)})
    return [summary_from_row(row) for row in await cur.fetchall()]


async def queue_statuses(conn: Connection, tenant_ids: Sequence[UUID]) -> dict[UUID, QueueStatus]:
    """Queue counts of the given tenants; unknown (or invisible) tenants are absent."""
    cur = await conn.execute(query("api_queue_statuses"), {"tenant_ids": list(tenant_ids)})
    return {cast(UUID, r["tenant_id"]): queue_status_from_row(r) for r in await cur.fetchall()}


async def tenant_exists(conn: Connection, tenant_id: UUID) -> bool:
    cur = await conn.execute(query("api_tenant_exists"), {"tenant_id": tenant_id})
    row = await cur.fetchone()
    return bool(row and row["found"])


@dataclass(frozen=True, slots=True)
class ScorePoint:
    created_at: datetime
    aoer_score: Decimal
    visibility_risk: Decimal
    grade: Grade
    risk_level: RiskLevel
    metrics: JsonObject


async def score_history(conn: Connection, tenant_id: UUID, days: int) -> list[ScorePoint]:
    cur = await conn.execute(
        query("api_score_history"), {"tenant_id": tenant_id, "days": days, "limit": HISTORY_LIMIT}
    )
    return [
        ScorePoint(
            created_at=cast(datetime, r["created_at"]),
            aoer_score=cast(Decimal, r["aoer_score"]),
            visibility_risk=cast(Decimal, r["visibility_risk"]),
            grade=cast(Grade, r["grade"]),
            risk_level=cast(RiskLevel, r["risk_level"]),
            metrics=cast(JsonObject, r["metrics"]),
        )
        for r in await cur.fetchall()
    ]


async def ping(conn: Connection) -> None:
    await conn.execute(query("api_ping"))


async def database_name(conn: Connection) -> str:
    cur = await conn.execute(query("api_database_name"))
    row = await cur.fetchone()
    return str(row["name"]) if row else "aoer"
