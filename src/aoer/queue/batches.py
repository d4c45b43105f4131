"""Process a claimed batch: one transaction for every score, event and job state it changes.

A tenant whose recompute raises (a "poison" tenant) must not fail its neighbours: the batch
is retried in halves inside savepoints until the failing jobs stand alone; they are recorded
as failed attempts and the rest commit together.
"""

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import cast
from uuid import UUID

import psycopg

from aoer.db.pool import Connection
from aoer.db.queries import query
from aoer.queue.jobs import fail
from aoer.types import ClaimedJob, CompletedJob, FailedAttempt, Priority

logger = logging.getLogger(__name__)

# Errors that say the connection or server is gone: no tenant is to blame, so the batch is
# not bisected; its leases expire and another worker takes it back.
_FATAL = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass
class BatchOutcome:
    completed: list[CompletedJob] = field(default_factory=list)
    failed: list[FailedAttempt] = field(default_factory=list)
    elapsed_ms: float = 0.0


async def _complete(
    conn: Connection, worker_id: str, jobs: Sequence[ClaimedJob]
) -> list[CompletedJob]:
    cur = await conn.execute(
        query("complete_jobs"), {"worker_id": worker_id, "job_ids": [j.id for j in jobs]}
    )
    return [
        CompletedJob(
            id=cast(UUID, r["id"]),
            tenant_id=cast(UUID, r["tenant_id"]),
            priority=cast(Priority, r["priority"]),
            aoer_score=cast(Decimal, r["aoer_score"]),
            visibility_risk=cast(Decimal, r["visibility_risk"]),
            latency_ms=cast(float, r["latency_ms"]),
        )
        for r in await cur.fetchall()
    ]


async def _complete_isolating(
    conn: Connection, worker_id: str, jobs: Sequence[ClaimedJob]
) -> tuple[list[CompletedJob], list[tuple[ClaimedJob, str]]]:
    """Complete `jobs` in a savepoint; on error, bisect until the poison jobs stand alone."""
    try:
        async with conn.transaction():
            return await _complete(conn, worker_id, jobs), []
    except _FATAL:
        raise
    except psycopg.Error as exc:
        if len(jobs) == 1:
            message = (exc.diag.message_primary or str(exc)).strip()
            return [], [(jobs[0], message)]
    half = len(jobs) // 2
    done_a, failed_a = await _complete_isolating(conn, worker_id, jobs[:half])
    done_b, failed_b = await _complete_isolating(conn, worker_id, jobs[half:])
    return done_a + done_b, failed_a + failed_b


async def process_batch(
    conn: Connection,
    worker_id: str,
    jobs: Sequence[ClaimedJob],
    *,
    rng: random.Random | None = None,
) -> BatchOutcome:
    """Recompute every claimed job's tenant and settle every job, in one transaction."""
    started = time.perf_counter()
    outcome = BatchOutcome()
    if not jobs:
        return outcome
    async with conn.transaction():
        outcome.completed, failures = await _complete_isolating(conn, worker_id, jobs)
        if failures:
            outcome.failed = await fail(conn, worker_id, failures, rng)
        if outcome.completed:
            await conn.execute(
                query("notify_summaries"),
                {"tenant_ids": [job.tenant_id for job in outcome.completed]},
            )
    outcome.elapsed_ms = (time.perf_counter() - started) * 1000
    return outcome
