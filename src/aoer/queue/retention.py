"""Retention: delete finished jobs, failures, old events and alerts, expired sessions, in
batches.

Each batch is its own short transaction (the session is in autocommit), so retention never
holds locks or bloats one long transaction."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aoer.constants import RETENTION_BATCH_ROWS
from aoer.store import Session

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


async def purge(session: Session, ages: RetentionAges) -> dict[str, int]:
    """Delete everything older than its retention age; returns rows deleted per table."""
    deleted = {
        "aoer_queue": await _in_batches(session.jobs.delete_finished, ages.jobs_days),
        "aoer_failures": await _in_batches(session.jobs.delete_failures, ages.failures_days),
        "metrics_events": await _in_batches(session.scores.delete_events, ages.events_days),
        "aoer_sessions": await _expired_sessions(session),
        # Alerts (with their deliveries) live as long as the score history they annotate;
        # a pending delivery is kept whatever its age.
        "alerts": await _in_batches(session.alerts.delete_old, ages.events_days),
    }
    logger.info("[AOER] Retention deleted %s", deleted, extra={"action": "retention"})
    return deleted
