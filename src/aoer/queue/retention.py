"""Retention: delete finished jobs, failures, old alerts, expired sessions and long-gone
workers in batches; keep the monthly partitions of `aiv_raw_signals` and `metrics_events`
created ahead, and drop whole months of events past their age (0014_partitions.sql) instead of
deleting their rows.

Each batch is its own short transaction (the session is in autocommit), so retention never
holds locks or bloats one long transaction."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aoer.constants import PARTITION_MONTHS_AHEAD, RETENTION_BATCH_ROWS, WORKER_FORGET_S
from aoer.store import Session
from aoer.store.partitions import PARTITIONED_TABLES
from aoer.types import JsonObject

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionAges:
    jobs_days: int
    failures_days: int
    events_days: int


async def _in_batches(delete: Callable[[int, int], Awaitable[int]], days: int) -> int:
    total = 0
    while True:
        deleted = await delete(days, RETENTION_BATCH_ROWS)
        total += deleted
        if deleted < RETENTION_BATCH_ROWS:
            return total


async def _expired_sessions(session: Session) -> int:
    """Used login links and sessions past their token's expiry: nothing can present them."""
    total = 0
    while True:
        deleted = await session.sessions.delete_expired(RETENTION_BATCH_ROWS)
        total += deleted
        if deleted < RETENTION_BATCH_ROWS:
            return total


async def maintain_partitions(session: Session, events_days: int) -> JsonObject:
    """Create the coming months' partitions of every partitioned table; drop the months of
    `metrics_events` that ended `events_days` or more ago. Signals have no retention age."""
    created = {
        table: await session.partitions.create_ahead(table, PARTITION_MONTHS_AHEAD)
        for table in PARTITIONED_TABLES
    }
    events = await session.partitions.drop_before("metrics_events", events_days)
    return {
        "created": created,
        "dropped": {"metrics_events": events.dropped},
        "defaultRowsDeleted": {"metrics_events": events.deleted},
    }


async def purge(session: Session, ages: RetentionAges) -> JsonObject:
    """Delete everything older than its retention age: rows deleted per table, and the
    partitions created and dropped."""
    partitions = await maintain_partitions(session, ages.events_days)
    deleted = {
        "aoer_queue": await _in_batches(session.jobs.delete_finished, ages.jobs_days),
        "aoer_failures": await _in_batches(session.jobs.delete_failures, ages.failures_days),
        "aoer_sessions": await _expired_sessions(session),
        # Rows of workers that died without removing theirs (a clean exit removes it).
        "aoer_workers": await session.console.delete_gone_workers(WORKER_FORGET_S),
        # Alerts (with their deliveries) live as long as the score history they annotate;
        # a pending delivery is kept whatever its age.
        "alerts": await _in_batches(session.alerts.delete_old, ages.events_days),
    }
    logger.info(
        "[AOER] Retention deleted %s; partitions %s",
        deleted,
        partitions,
        extra={"action": "retention"},
    )
    return {"deleted": deleted, "partitions": partitions}
