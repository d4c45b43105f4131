"""Queue semantics above the store: parse what callers give, enqueue, fail with backoff, and
log the contract's lines (DESIGN §5). The SQL lives in `aoer.store.jobs`."""

import logging
import random
from collections.abc import Iterable, Sequence
from typing import NoReturn
from uuid import UUID

from aoer.constants import (
    BACKOFF_BASE_S,
    BACKOFF_CAP_S,
    BACKOFF_JITTER,
    CRON_PRIORITY,
    DEFAULT_PRIORITY,
    DEFAULT_TICK_CHUNK,
    FIRST_TICK_CHUNK,
    PRIORITIES,
    QUEUE_SETTLED,
)
from aoer.errors import (
    DatabaseError,
    InactiveTenant,
    InvalidInput,
    TransientDatabaseError,
    UnknownTenant,
)
from aoer.store import Session
from aoer.store.jobs import QueuedChunk
from aoer.store.tenants import TenantChange
from aoer.types import ClaimedJob, CompletedJob, EnqueuedJob, FailedAttempt, Priority
from aoer.wording import plural

logger = logging.getLogger(__name__)


def parse_tenant_id(value: UUID | str) -> UUID:
    """A tenant id as a UUID, or a clear error naming the bad value."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(f"malformed tenant id {value!r}: expected a UUID") from None


def parse_priority(value: str) -> Priority:
    for priority in PRIORITIES:
        if value == priority:
            return priority
    raise InvalidInput(f"unknown priority {value!r}: expected one of {', '.join(PRIORITIES)}")


def backoff_s(retry_count: int, rng: random.Random | None = None) -> float:
    """Delay before attempt `retry_count + 1`: 60 s doubling per attempt, capped, jittered."""
    base = min(BACKOFF_BASE_S * 2 ** max(retry_count - 1, 0), BACKOFF_CAP_S)
    jitter: float = (rng or random.Random()).random()
    return float(base * (1 + BACKOFF_JITTER * jitter))


async def enqueue(
    session: Session, tenant_id: UUID | str, priority: str = DEFAULT_PRIORITY
) -> EnqueuedJob:
    """Queue one tenant (or coalesce into its waiting job); unknown/inactive → error."""
    tid = parse_tenant_id(tenant_id)
    jobs = await enqueue_many(session, [tid], parse_priority(priority))
    if jobs:
        return jobs[0]
    await refuse_not_queued(session, tid)


async def refuse_not_queued(session: Session, tenant_id: UUID) -> NoReturn:
    """The error for a tenant an enqueue left out: unknown, or inactive."""
    if await session.jobs.tenant_active(tenant_id) is None:
        raise UnknownTenant(f"unknown tenant {tenant_id}")
    raise InactiveTenant(f"tenant {tenant_id} is inactive")


async def enqueue_many(
    session: Session, tenant_ids: Iterable[UUID], priority: Priority = DEFAULT_PRIORITY
) -> list[EnqueuedJob]:
    """Queue many tenants in one statement; unknown and inactive tenants are skipped."""
    jobs = await session.jobs.enqueue(tenant_ids, priority)
    for job in jobs:
        logger.info(
            "[AOER] Queued recompute for tenant %s (priority: %s)",
            job.tenant_id,
            job.priority,
            extra={"tenant_id": str(job.tenant_id), "job_id": str(job.id), "action": "enqueue"},
        )
    return jobs


async def change_tenant(
    session: Session, tenant_id: UUID, *, name: str | None, active: bool | None
) -> TenantChange | None:
    """Rename or (de)activate a tenant (None: unknown). A tenant made active again is queued:
    the signals it received while inactive were written but never recomputed, and its
    summary would stay as it was until the next scheduled refresh."""
    changed = await session.tenants.change(tenant_id, name=name, active=active)
    if changed is not None and changed.is_active and not changed.was_active:
        await enqueue_many(session, [tenant_id], DEFAULT_PRIORITY)
    return changed


async def trigger_cron(session: Session, chunk: int = DEFAULT_TICK_CHUNK) -> int:
    """The recompute tick at once (`aoer cron --once`, the cron endpoint): queue every active
    tenant at low priority in chunks of `chunk` tenants, each its own transaction, so workers
    start on the first; returns how many. (The scheduler's tick records its progress to
    resume after a crash: worker/scheduler.py.)"""
    queued, tenants, after = 0, 0, None
    while True:
        size = cron_chunk_size(after, chunk)
        done = await queue_cron_chunk(session, after, size)
        queued += done.queued
        tenants += done.tenants
        after = done.last_id or after
        if done.tenants < size:
            break
    log_cron_queued(queued, tenants)
    return queued


def cron_chunk_size(after: UUID | None, limit: int) -> int:
    """Tenants in the tick's next chunk: `limit`, but the first chunk at most FIRST_TICK_CHUNK,
    so workers get their first jobs within milliseconds of the tick."""
    return min(limit, FIRST_TICK_CHUNK) if after is None else limit


async def queue_cron_chunk(session: Session, after: UUID | None, limit: int) -> QueuedChunk:
    """One chunk of the recompute tick: the next `limit` active tenants by id after `after`,
    queued at low priority (the scheduler commits it with the tick's progress)."""
    chunk = await session.jobs.enqueue_active_chunk(CRON_PRIORITY, after, limit)
    if after is None:
        logger.info(
            "[AOER] Cron job triggered - queuing all tenants for recompute",
            extra={"action": "cron"},
        )
    return chunk


def log_cron_queued(queued: int, tenants: int) -> None:
    """The contract's closing line of a recompute tick (DESIGN §5), and, when some active
    tenants were not queued, why: each already had a waiting job (as soon, as urgent), so the
    tick's "Queued 0" after "queuing all tenants" is not read as a fleet left out."""
    logger.info("[AOER] Queued %d tenants for recompute", queued, extra={"action": "cron"})
    waiting = tenants - queued
    if waiting > 0:
        logger.info(
            "[AOER] %d more %s already waiting to be recomputed",
            waiting,
            "tenant was" if waiting == 1 else "tenants were",
            extra={"action": "cron"},
        )


async def fail(
    session: Session,
    worker_id: str,
    failures: Sequence[tuple[ClaimedJob, str]],
    rng: random.Random | None = None,
) -> list[FailedAttempt]:
    """Record failed attempts; each job retries after its backoff or ends `failed`."""
    if not failures:
        return []
    attempts = await session.jobs.fail(
        worker_id,
        [job.id for job, _ in failures],
        [error for _, error in failures],
        [backoff_s(job.retry_count + 1, rng) for job, _ in failures],
    )
    for attempt in attempts:
        log_failure(attempt.id, attempt.tenant_id, attempt.error_message)
    # On commit the dashboards' queue tiles show the attempt (and a "Recompute now" waiting
    # on it stops waiting); workers are not woken for it.
    await session.jobs.wake_workers(QUEUE_SETTLED)
    return attempts


def log_failure(job_id: UUID, tenant_id: UUID, error: str) -> None:
    logger.error(
        "[AOER] ❌ Failed recompute for tenant %s: %s",
        tenant_id,
        error,
        extra={"tenant_id": str(tenant_id), "job_id": str(job_id), "action": "fail"},
    )


async def raise_alerts(
    session: Session, completed: Sequence[CompletedJob], failed_job_ids: Sequence[UUID]
) -> int:
    """Raise the alerts of completed recomputes and of jobs that ended `failed`, in the
    caller's transaction (DESIGN §13); how many. One statement; with no active rule, only a
    one-row check. It runs in a savepoint: an alert that cannot be written (a bug, a bad
    rule) is logged and never fails the recomputes it rides with."""
    if not completed and not failed_job_ids:
        return 0
    if not await session.alerts.armed():
        return 0
    try:
        async with session.transaction():
            raised = await session.alerts.raise_for_batch(completed, failed_job_ids)
    except TransientDatabaseError:
        raise
    except DatabaseError:
        logger.exception("[AOER] could not raise alerts for %d recomputes", len(completed))
        return 0
    if raised.alerts:
        logger.info(
            "[AOER] Raised %d alerts (%d deliveries)",
            raised.alerts,
            raised.deliveries,
            extra={"action": "alert"},
        )
    return raised.alerts


async def reclaim_expired(session: Session) -> int:
    """Take back jobs of workers that died; each lost attempt counts as a failure (and a
    job whose attempts are spent raises its job_failed alerts in the same transaction)."""
    async with session.transaction():
        taken = await session.jobs.reclaim_expired()
        await raise_alerts(session, [], [job.id for job in taken if job.status == "failed"])
    if taken:
        logger.warning(
            "[AOER] Took back %s whose worker stopped renewing its lease",
            plural(len(taken), "job"),
        )
    for job in taken:  # the lost attempt is a failed recompute, logged as any other
        log_failure(job.id, job.tenant_id, job.error_message)
    return len(taken)
