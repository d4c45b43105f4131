"""Process a claimed batch: one transaction for every score, event, job state and alert it
changes.

A tenant whose recompute raises (a "poison" tenant) must not fail its neighbours: the batch
is retried in halves inside savepoints until the failing jobs stand alone; they are recorded
as failed attempts and the rest commit together. A transient database error (connection
lost, deadlock, timeout) blames no tenant: it ends the whole batch and reaches the caller.

Unless the caller asks to isolate conflicts (`isolate_conflicts`, after the same batch met a
lock or statement timeout, a deadlock or a serialization failure several times): then such
an error is bisected like any other, under short limits (ISOLATING_LOCK_TIMEOUT_MS, ..._
STATEMENT_...), so the tenant it keeps happening on stands alone, spends an attempt and, in
the end, fails with an alert, while its neighbours commit. A tenant whose summary row an
open transaction holds, or whose recompute never finishes, held its whole batch (and every
tenant in it) forever. When more than MAX_CONFLICT_CULPRITS tenants meet it, or every tenant
of a batch of several does, the cause is not one tenant (a lock on a whole table, say): the
batch ends with the error as before, and nobody spends an attempt. A job alone in its batch
is blamed.
"""

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from aoer.errors import ConcurrencyConflict, DatabaseError, TransientDatabaseError
from aoer.queue.jobs import fail, raise_alerts
from aoer.store import Session
from aoer.store.console import LockWait, lock_wait_place
from aoer.types import ClaimedJob, CompletedJob, FailedAttempt

# While isolating: how long a statement may wait for a lock and run (the whole batch took
# well under a second in every measured run; a bisection step holds a part of it).
ISOLATING_LOCK_TIMEOUT_MS = 2_000
ISOLATING_STATEMENT_TIMEOUT_MS = 30_000
ISOLATING_IDLE_MS = 10_000  # a hung worker's transaction still ends
MAX_CONFLICT_CULPRITS = 3


@dataclass
class _Isolation:
    """Bisection's state: whether conflicts are bisected, how many tenants may be blamed for
    one before it stops being any one tenant's, and the first one blamed."""

    conflicts: bool
    culprits_left: int = MAX_CONFLICT_CULPRITS
    first_conflict: ConcurrencyConflict | None = None


@dataclass
class BatchOutcome:
    completed: list[CompletedJob] = field(default_factory=list)
    failed: list[FailedAttempt] = field(default_factory=list)
    elapsed_ms: float = 0.0


async def _complete_isolating(
    session: Session, worker_id: str, jobs: Sequence[ClaimedJob], isolation: _Isolation
) -> tuple[list[CompletedJob], list[tuple[ClaimedJob, str]]]:
    """Complete `jobs` in a savepoint; on error, bisect until the poison jobs stand alone."""
    try:
        async with session.transaction():
            return await session.jobs.complete(worker_id, [j.id for j in jobs]), []
    except TransientDatabaseError as exc:
        if not (isolation.conflicts and isinstance(exc, ConcurrencyConflict)):
            raise
        if len(jobs) == 1:
            isolation.culprits_left -= 1
            if isolation.culprits_left < 0:
                raise  # more tenants than one bad one: not theirs
            isolation.first_conflict = isolation.first_conflict or exc
            waited = await _lock_wait(session, exc)  # the sessions stay in the worker's log
            told = f"{exc.described}; {waited.row}" if waited else exc.described
            return [], [(jobs[0], f"{told} (every time: isolated from its batch)")]
    except DatabaseError as exc:
        if len(jobs) == 1:
            return [], [(jobs[0], exc.described)]
    half = len(jobs) // 2
    done_a, failed_a = await _complete_isolating(session, worker_id, jobs[:half], isolation)
    done_b, failed_b = await _complete_isolating(session, worker_id, jobs[half:], isolation)
    return done_a + done_b, failed_a + failed_b


async def _lock_wait(session: Session, exc: DatabaseError) -> LockWait | None:
    """Whose row a lock timeout waited on (in a savepoint of its own; None when the error
    names no row or the look-up fails): the blamed job's message names it."""
    if lock_wait_place(exc.diagnostics) is None:
        return None
    try:
        async with session.transaction():
            return await session.console.lock_wait(exc.diagnostics)
    except DatabaseError:
        return None


async def process_batch(
    session: Session,
    worker_id: str,
    jobs: Sequence[ClaimedJob],
    *,
    rng: random.Random | None = None,
    isolate_conflicts: bool = False,
) -> BatchOutcome:
    """Recompute every claimed job's tenant and settle every job, in one transaction;
    `isolate_conflicts`: blame the tenants a timeout or conflict keeps happening on."""
    started = time.perf_counter()
    outcome = BatchOutcome()
    if not jobs:
        return outcome
    async with session.transaction():
        isolation = _Isolation(conflicts=isolate_conflicts)
        if isolate_conflicts:
            await session.jobs.limit_transaction(
                lock_timeout_ms=ISOLATING_LOCK_TIMEOUT_MS,
                idle_ms=ISOLATING_IDLE_MS,
                statement_timeout_ms=ISOLATING_STATEMENT_TIMEOUT_MS,
            )
        outcome.completed, failures = await _complete_isolating(session, worker_id, jobs, isolation)
        if isolation.first_conflict is not None and not outcome.completed and len(jobs) > 1:
            # Every tenant of the batch met it (a lock on a whole table, a small batch): it is
            # none of theirs, and none spends an attempt. A job alone in its batch (a retry
            # comes back alone) is blamed: nobody else tells, and unblamed it held a batch slot
            # for AOER_CONNECT_TIMEOUT a round, and ended as a lease expiry.
            raise isolation.first_conflict
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
