"""Process a claimed batch: one transaction for every score, event, job state and alert it
changes.

A tenant whose recompute raises (a "poison" tenant) must not fail its neighbours: the batch
is retried in halves inside savepoints until the failing jobs stand alone; they are recorded
as failed attempts and the rest commit together. A transient database error (connection
lost, deadlock, timeout) blames no tenant: it ends the whole batch and reaches the caller.
"""

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aoer.errors import DatabaseError, TransientDatabaseError
from aoer.queue.jobs import fail, raise_alerts
from aoer.store import Session
from aoer.types import ClaimedJob, CompletedJob, FailedAttempt


@dataclass
class BatchOutcome:
    completed: list[CompletedJob] = field(default_factory=list)
    failed: list[FailedAttempt] = field(default_factory=list)
    elapsed_ms: float = 0.0


async def _complete_isolating(
    session: Session, worker_id: str, jobs: Sequence[ClaimedJob]
) -> tuple[list[CompletedJob], list[tuple[ClaimedJob, str]]]:
    """Complete `jobs` in a savepoint; on error, bisect until the poison jobs stand alone."""
    try:
        async with session.transaction():
            return await session.jobs.complete(worker_id, [j.id for j in jobs]), []
    except TransientDatabaseError:
        raise
    except DatabaseError as exc:
        if len(jobs) == 1:
            return [], [(jobs[0], str(exc))]
    half = len(jobs) // 2
    done_a, failed_a = await _complete_isolating(session, worker_id, jobs[:half])
    done_b, failed_b = await _complete_isolating(session, worker_id, jobs[half:])
    return done_a + done_b, failed_a + failed_b


async def process_batch(
    session: Session,
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
    async with session.transaction():
        outcome.completed, failures = await _complete_isolating(session, worker_id, jobs)
        if failures:
            outcome.failed = await fail(session, worker_id, failures, rng)
        await raise_alerts(
            session,
            outcome.completed,
            [attempt.id for attempt in outcome.failed if attempt.status == "failed"],
        )
        if outcome.completed:
            await session.jobs.announce_summaries([job.tenant_id for job in outcome.completed])
    outcome.elapsed_ms = (time.perf_counter() - started) * 1000
    return outcome
