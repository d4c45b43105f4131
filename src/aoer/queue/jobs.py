"""Enqueue, claim, fail, lease and report on jobs; each state change is one transaction."""

import logging
import random
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import cast
from uuid import UUID

from aoer.constants import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    BACKOFF_JITTER,
    CRON_PRIORITY,
    DEFAULT_PRIORITY,
    PRIORITIES,
)
from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.errors import InactiveTenant, InvalidInput, UnknownTenant
from aoer.types import (
    ClaimedJob,
    EnqueuedJob,
    FailedAttempt,
    JobStatus,
    Priority,
    QueueDepth,
    QueueStatus,
    Throughput,
)

logger = logging.getLogger(__name__)

RECLAIM_LIMIT = 10_000  # expired jobs taken back per statement


def parse_tenant_id(value: UUID | str) -> UUID:
    """A tenant id as a UUID, or a clear error naming the bad value."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(f"malformed tenant id {value!r}: expected a UUID") from None


def parse_priority(value: str) -> Priority:
    if value not in PRIORITIES:
        raise InvalidInput(f"unknown priority {value!r}: expected one of {', '.join(PRIORITIES)}")
    return cast(Priority, value)


def backoff_s(retry_count: int, rng: random.Random | None = None) -> float:
    """Delay before attempt `retry_count + 1`: 60 s doubling per attempt, capped, jittered."""
    base = min(BACKOFF_BASE_S * 2 ** max(retry_count - 1, 0), BACKOFF_CAP_S)
    jitter: float = (rng or random.Random()).random()
    return float(base * (1 + BACKOFF_JITTER * jitter))


async def _notify_workers(conn: Connection, priority: str) -> None:
    await conn.execute(query("notify_queue"), {"payload": priority})


async def enqueue(
    conn: Connection,
    tenant_id: UUID | str,
    priority: str = DEFAULT_PRIORITY,
    *,
    max_retries: int = 3,
) -> EnqueuedJob:
    """Queue one tenant (or coalesce into its waiting job); unknown/inactive → error."""
    tid = parse_tenant_id(tenant_id)
    jobs = await enqueue_many(conn, [tid], parse_priority(priority), max_retries=max_retries)
    if jobs:
        return jobs[0]
    cur = await conn.execute(query("tenant_state"), {"tenant_id": tid})
    row = await cur.fetchone()
    if row is None:
        raise UnknownTenant(f"unknown tenant {tid}")
    raise InactiveTenant(f"tenant {tid} is inactive")


async def enqueue_many(
    conn: Connection,
    tenant_ids: Iterable[UUID],
    priority: Priority = DEFAULT_PRIORITY,
    *,
    max_retries: int = 3,
) -> list[EnqueuedJob]:
    """Queue many tenants in one statement; unknown and inactive tenants are skipped."""
    ids = sorted(set(tenant_ids))
    async with conn.transaction():
        cur = await conn.execute(
            query("enqueue_tenants"),
            {"tenant_ids": ids, "priority": priority, "max_retries": max_retries},
        )
        jobs = [
            EnqueuedJob(
                id=cast(UUID, r["id"]),
                tenant_id=cast(UUID, r["tenant_id"]),
                priority=cast(Priority, r["priority"]),
                status=cast(JobStatus, r["status"]),
                coalesced=bool(r["coalesced"]),
            )
            for r in await cur.fetchall()
        ]
        if jobs:
            await _notify_workers(conn, priority)
    for job in jobs:
        logger.info(
            "[AOER] Queued recompute for tenant %s (priority: %s)",
            job.tenant_id,
            job.priority,
            extra={"tenant_id": str(job.tenant_id), "job_id": str(job.id), "action": "enqueue"},
        )
    return jobs


async def enqueue_all_active(
    conn: Connection, priority: Priority = CRON_PRIORITY, *, max_retries: int = 3
) -> int:
    """Queue every active tenant in one set-based statement; returns how many."""
    async with conn.transaction():
        cur = await conn.execute(
            query("enqueue_all_active"), {"priority": priority, "max_retries": max_retries}
        )
        row = await cur.fetchone()
        queued = int(cast(int, row["queued"])) if row else 0
        if queued:
            await _notify_workers(conn, priority)
    return queued


async def claim(conn: Connection, worker_id: str, limit: int, lease_s: float) -> list[ClaimedJob]:
    """Claim up to `limit` due jobs in priority order under a lease."""
    async with conn.transaction():
        cur = await conn.execute(
            query("claim_jobs"), {"worker_id": worker_id, "limit": limit, "lease_s": lease_s}
        )
        rows = await cur.fetchall()
    return [
        ClaimedJob(
            id=cast(UUID, r["id"]),
            tenant_id=cast(UUID, r["tenant_id"]),
            priority=cast(Priority, r["priority"]),
            retry_count=cast(int, r["retry_count"]),
            max_retries=cast(int, r["max_retries"]),
            created_at=cast(datetime, r["created_at"]),
        )
        for r in rows
    ]


async def fail(
    conn: Connection,
    worker_id: str,
    failures: Sequence[tuple[ClaimedJob, str]],
    rng: random.Random | None = None,
) -> list[FailedAttempt]:
    """Record failed attempts; each job retries after its backoff or ends `failed`."""
    if not failures:
        return []
    params = {
        "worker_id": worker_id,
        "job_ids": [job.id for job, _ in failures],
        "errors": [error for _, error in failures],
        "delays_s": [backoff_s(job.retry_count + 1, rng) for job, _ in failures],
    }
    async with conn.transaction():
        cur = await conn.execute(query("fail_jobs"), params)
        rows = await cur.fetchall()
    attempts = [
        FailedAttempt(
            id=cast(UUID, r["id"]),
            tenant_id=cast(UUID, r["tenant_id"]),
            status=cast(JobStatus, r["status"]),
            retry_count=cast(int, r["retry_count"]),
            scheduled_at=cast(datetime, r["scheduled_at"]),
            error_message=str(r["error_message"]),
        )
        for r in rows
    ]
    for attempt in attempts:
        _log_failure(attempt.id, attempt.tenant_id, attempt.error_message)
    return attempts


def _log_failure(job_id: UUID, tenant_id: UUID, error: str) -> None:
    logger.error(
        "[AOER] ❌ Failed recompute for tenant %s: %s",
        tenant_id,
        error,
        extra={"tenant_id": str(tenant_id), "job_id": str(job_id), "action": "fail"},
    )


async def renew_leases(
    conn: Connection, worker_id: str, job_ids: Sequence[UUID], lease_s: float
) -> set[UUID]:
    """Extend the leases this worker still holds; returns the ids still held."""
    if not job_ids:
        return set()
    async with conn.transaction():
        cur = await conn.execute(
            query("renew_leases"),
            {"worker_id": worker_id, "job_ids": list(job_ids), "lease_s": lease_s},
        )
        return {cast(UUID, r["id"]) for r in await cur.fetchall()}


async def reclaim_expired(conn: Connection) -> int:
    """Take back jobs of workers that died; each lost attempt counts as a failure."""
    async with conn.transaction():
        cur = await conn.execute(query("reclaim_expired"), {"limit": RECLAIM_LIMIT})
        rows = await cur.fetchall()
        if any(r["status"] == "queued" for r in rows):
            await _notify_workers(conn, "reclaimed")
    if rows:
        logger.warning(
            "[AOER] Took back %d jobs whose worker stopped renewing its lease", len(rows)
        )
    for row in rows:  # the lost attempt is a failed recompute, logged as any other
        _log_failure(cast(UUID, row["id"]), cast(UUID, row["tenant_id"]), str(row["error_message"]))
    return len(rows)


async def next_due_at(conn: Connection) -> datetime | None:
    cur = await conn.execute(query("next_due_at"))
    row = await cur.fetchone()
    return cast(datetime | None, row["due_at"]) if row else None


async def tenant_queue_status(conn: Connection, tenant_id: UUID | str) -> QueueStatus:
    cur = await conn.execute(
        query("tenant_queue_status"), {"tenant_id": parse_tenant_id(tenant_id)}
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return queue_status_from_row(row)


def queue_status_from_row(row: dict[str, object]) -> QueueStatus:
    """Counts by status (`queued` reported as `pending`) as the dataclass."""
    return QueueStatus(
        pending=cast(int, row["pending"]),
        processing=cast(int, row["processing"]),
        completed=cast(int, row["completed"]),
        failed=cast(int, row["failed"]),
    )


async def queue_depth(conn: Connection) -> list[QueueDepth]:
    cur = await conn.execute(query("queue_depth"))
    return [
        QueueDepth(
            status=cast(JobStatus, r["status"]),
            priority=cast(Priority, r["priority"]),
            jobs=cast(int, r["jobs"]),
            oldest_age_s=cast(float | None, r["oldest_age_s"]),
        )
        for r in await cur.fetchall()
    ]


async def throughput(conn: Connection) -> Throughput:
    cur = await conn.execute(query("throughput"))
    row = await cur.fetchone()
    assert row is not None
    return Throughput(
        last_minute=cast(int, row["last_minute"]), last_hour=cast(int, row["last_hour"])
    )


async def trigger_cron(conn: Connection, *, max_retries: int = 3) -> int:
    """The recompute tick: queue every active tenant at low priority; returns how many."""
    logger.info(
        "[AOER] Cron job triggered - queuing all tenants for recompute", extra={"action": "cron"}
    )
    queued = await enqueue_all_active(conn, CRON_PRIORITY, max_retries=max_retries)
    logger.info("[AOER] Queued %d tenants for recompute", queued, extra={"action": "cron"})
    return queued
