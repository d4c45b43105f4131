"""Recompute and read summaries outside the queue."""

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import cast
from uuid import UUID

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.types import Grade, JsonObject, RiskLevel, Score, Summary


async def recompute_tenants(conn: Connection, tenant_ids: Iterable[UUID]) -> list[Score]:
    """Compute and store the summaries of these tenants in one statement."""
    async with conn.transaction():
        cur = await conn.execute(query("recompute_tenants"), {"tenant_ids": list(tenant_ids)})
        rows = await cur.fetchall()
    return [
        Score(
            tenant_id=cast(UUID, r["tenant_id"]),
            aoer_score=cast(Decimal, r["aoer_score"]),
            visibility_risk=cast(Decimal, r["visibility_risk"]),
            metrics=cast(JsonObject, r["metrics"]),
        )
        for r in rows
    ]


def summary_from_row(r: dict[str, object]) -> Summary:
    """A summary row (with grade and risk level) as the dataclass."""
    return Summary(
        tenant_id=cast(UUID, r["tenant_id"]),
        aoer_score=cast(Decimal, r["aoer_score"]),
        visibility_risk=cast(Decimal, r["visibility_risk"]),
        grade=cast(Grade, r["grade"]),
        risk_level=cast(RiskLevel, r["risk_level"]),
        last_updated=cast(datetime, r["last_updated"]),
        metrics=cast(JsonObject, r["metrics"]),
    )


async def get_summary(conn: Connection, tenant_id: UUID) -> Summary | None:
    cur = await conn.execute(query("get_summary"), {"tenant_id": tenant_id})
    r = await cur.fetchone()
    return None if r is None else summary_from_row(r)
