"""Retention: delete finished jobs, failures and old events in batches, oldest first."""

import logging
from dataclasses import dataclass
from typing import LiteralString

from aoer.constants import RETENTION_BATCH_ROWS
from aoer.db.pool import Connection
from aoer.db.queries import query

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionAges:
    jobs_days: int
    failures_days: int
    events_days: int


async def _delete_in_batches(conn: Connection, sql: LiteralString, days: int) -> int:
    total = 0
    while True:
        async with conn.transaction():
            cur = await conn.execute(sql, {"days": days, "limit": RETENTION_BATCH_ROWS})
        total += cur.rowcount
        if cur.rowcount < RETENTION_BATCH_ROWS:
            return total


async def purge(conn: Connection, ages: RetentionAges) -> dict[str, int]:
    """Delete everything older than its retention age; returns rows deleted per table."""
    deleted = {
        "aoer_queue": await _delete_in_batches(conn, query("delete_finished_jobs"), ages.jobs_days),
        "aoer_failures": await _delete_in_batches(
            conn, query("delete_old_failures"), ages.failures_days
        ),
        "metrics_events": await _delete_in_batches(
            conn, query("delete_old_events"), ages.events_days
        ),
    }
    logger.info("[AOER] Retention deleted %s", deleted, extra={"action": "retention"})
    return deleted
