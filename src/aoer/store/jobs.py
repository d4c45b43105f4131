"""`aoer_queue` and `aoer_failures`: enqueue, claim, complete, fail, lease, report, retain."""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.pq import TransactionStatus
from psycopg.rows import kwargs_row

from aoer.constants import (
    QUEUE_CHANNEL,
    RECLAIM_GRACE_S,
    RECLAIM_LIMIT,
    RECLAIM_LIVE_GRACE_S,
    RECOMPUTE_EVENT,
    SUMMARY_CHANNEL,
    WORKER_STALE_S,
)
from aoer.db.pool import Connection
from aoer.store.policy import QueuePolicy
from aoer.store.statements import Statements
from aoer.store.wakeup import Waker
from aoer.types import (
    ClaimedJob,
    CompletedJob,
    EnqueuedJob,
    FailedAttempt,
    Priority,
    QueueDepth,
    QueueStatus,
    ReclaimedJob,
    Throughput,
)


@dataclass(frozen=True, slots=True)
class ReleasedJob:
    id: UUID
    released: bool  # back in the queue; else ended (its tenant's waiting job carries it)


@dataclass(frozen=True, slots=True)
class LeaseCheck:
    """One held job after a renewal: renewed, or skipped because this worker's own batch
    holds its row (neither), or `lost` to another worker."""

    id: UUID
    renewed: bool
    lost: bool


@dataclass(frozen=True, slots=True)
class QueuedChunk:
    """One chunk of the fleet tick: its last tenant id (None: no tenant left), how many
    tenants it covered and how many of them it queued or coalesced."""

    last_id: UUID | None
    tenants: int
    queued: int


NIL_UUID = UUID(int=0)
TICK_LOCK_TIMEOUT_MS = 2000  # the tick waits at most this long on an insert in flight
TICK_IDLE_MS = 10_000  # a tick whose process hangs mid-transaction is ended by the server


def _status_row(*, tenant_id: UUID, **counts: int) -> tuple[UUID, QueueStatus]:
    return tenant_id, QueueStatus(**counts)


class Jobs(Statements):
    """The queue's rows. Each method that changes state is one transaction (a savepoint when
    the caller already holds one), and wakes workers when it queued anything.

    Its statements are planned on every execution, never prepared: `aoer_queue` grows and
    shrinks by a whole fleet within seconds, and a plan PostgreSQL cached for a prepared
    statement keeps the table's size from when it was made. A worker that started on an empty
    queue claimed from a tick's 30,000 jobs with its generic plan from then: the update read
    the whole queue testing every row against the 1,000 claimed ids (0.6-3.9 s a claim instead
    of ~10 ms; the API's enqueues waited on the claims' row locks and timed out). Planning
    costs well under a millisecond a statement (bench/README.md, issue 16: the mixed row)."""

    prepare = False

    def __init__(self, conn: Connection, policy: QueuePolicy, waker: Waker | None = None) -> None:
        super().__init__(conn, policy)
        self.waker = waker

    async def enqueue(self, tenant_ids: Iterable[UUID], priority: Priority) -> list[EnqueuedJob]:
        """Queue these tenants (coalescing into waiting jobs); unknown and inactive tenants
        are left out of the result.

        Outside any transaction the enqueue is one autocommitted statement, one round trip
        instead of three or four (BEGIN, the upsert, a NOTIFY, COMMIT), each of them a turn
        of a busy event loop (bench/README.md, issue 16). An urgent enqueue wakes the workers
        with a NOTIFY in that statement; others ask the store's `Waker` for a coalesced
        NOTIFY after it (store/wakeup.py: a NOTIFY per commit serialises commits
        database-wide). Inside a caller's transaction the enqueue is a savepoint and the
        statement's NOTIFY goes out with the caller's commit. Only an enqueue that wrote a job
        wakes anyone."""
        params = {
            "tenant_ids": sorted(set(tenant_ids)),
            "priority": priority,
            "max_retries": self.policy.max_retries,
            "channel": QUEUE_CHANNEL,
        }
        if self.conn.autocommit and self.conn.info.transaction_status == TransactionStatus.IDLE:
            waker = None if priority == "urgent" else self.waker
            params["notify"] = waker is None
            jobs = await self._all(EnqueuedJob, "enqueue_tenants", params)
            if jobs and waker is not None:
                waker.wake(priority)
            return jobs
        params["notify"] = True
        async with self.transaction():
            return await self._all(EnqueuedJob, "enqueue_tenants", params)

    async def enqueue_all_active(self, priority: Priority) -> int:
        """Queue every active tenant in one set-based statement; how many."""
        params = {"priority": priority, "max_retries": self.policy.max_retries}
        async with self.transaction():
            # The statement skips locked waiting jobs; a conflicting insert still in flight
            # is the only thing it may wait on, and not for long.
            await self.limit_transaction(
                lock_timeout_ms=TICK_LOCK_TIMEOUT_MS, idle_ms=TICK_IDLE_MS, statement_timeout_ms=0
            )
            queued = await self._int("enqueue_all_active", params)
            if queued:
                await self.wake_workers(priority)
        return queued

    async def enqueue_active_chunk(
        self, priority: Priority, after: UUID | None, limit: int
    ) -> QueuedChunk:
        """Queue the next `limit` active tenants by id after `after` (from the first when
        None), like enqueue_all_active; in the caller's transaction, waking workers."""
        params = {
            "priority": priority,
            "max_retries": self.policy.max_retries,
            "after": after or NIL_UUID,
            "first": after is None,
            "limit": limit,
        }
        async with self.transaction():
            await self.limit_transaction(
                lock_timeout_ms=TICK_LOCK_TIMEOUT_MS, idle_ms=TICK_IDLE_MS, statement_timeout_ms=0
            )
            chunk = await self._one(QueuedChunk, "enqueue_active_chunk", params)
            if chunk and chunk.queued:
                await self.wake_workers(priority)
        return chunk or QueuedChunk(None, 0, 0)

    async def tenant_active(self, tenant_id: UUID) -> bool | None:
        """Whether the tenant is active; None when it does not exist."""
        value = await self._value("tenant_state", {"tenant_id": tenant_id})
        return None if value is None else bool(value)

    async def wake_workers(self, payload: str) -> None:
        """NOTIFY idle workers; delivered when the current transaction commits."""
        await self._run("notify_queue", {"channel": QUEUE_CHANNEL, "payload": payload})

    async def claim(
        self, worker_id: str, limit: int | None = None, min_priority: Priority = "low"
    ) -> list[ClaimedJob]:
        """Claim up to `limit` (default: the batch size) due jobs of `min_priority` or above,
        in priority order, under a lease."""
        params = {
            "worker_id": worker_id,
            "limit": limit or self.policy.batch_size,
            "lease_s": self.policy.lease_s,
            "min_priority": min_priority,
        }
        async with self.transaction():
            return await self._all(ClaimedJob, "claim_jobs", params)

    async def complete(self, worker_id: str, job_ids: Sequence[UUID]) -> list[CompletedJob]:
        """Recompute and store the held jobs' tenants, add their events, mark them completed:
        one statement. Jobs this worker no longer holds are left alone."""
        params = {"worker_id": worker_id, "job_ids": list(job_ids), "event_type": RECOMPUTE_EVENT}
        return await self._all(CompletedJob, "complete_jobs", params)

    async def announce_summaries(self, tenant_ids: Sequence[UUID]) -> None:
        """Tell every API process which summaries changed (on commit)."""
        params = {"channel": SUMMARY_CHANNEL, "tenant_ids": list(tenant_ids)}
        await self._run("notify_summaries", params)

    async def fail(
        self,
        worker_id: str,
        job_ids: Sequence[UUID],
        errors: Sequence[str],
        delays_s: Sequence[float],
    ) -> list[FailedAttempt]:
        """Record failed attempts; each job retries after its delay or ends `failed`."""
        params = {
            "worker_id": worker_id,
            "job_ids": list(job_ids),
            "errors": list(errors),
            "delays_s": list(delays_s),
        }
        async with self.transaction():
            return await self._all(FailedAttempt, "fail_jobs", params)

    async def renew(self, worker_id: str, job_ids: Sequence[UUID]) -> list[LeaseCheck]:
        """Extend the leases this worker holds, never waiting on a row; how each job stands."""
        if not job_ids:
            return []
        params = {"worker_id": worker_id, "job_ids": list(job_ids), "lease_s": self.policy.lease_s}
        async with self.transaction():
            return await self._all(LeaseCheck, "renew_leases", params)

    async def release(
        self, worker_id: str, job_ids: Sequence[UUID], reason: str = "released"
    ) -> tuple[int, int]:
        """Put held jobs back in the queue without spending an attempt; a job whose tenant
        has a waiting job meanwhile ends instead (`reason`, naming the waiting job's part).
        How many went back, and how many ended."""
        if not job_ids:
            return 0, 0
        params = {"worker_id": worker_id, "job_ids": list(job_ids), "reason": reason}
        async with self.transaction():
            settled = await self._all(ReleasedJob, "release_jobs", params)
            released = sum(job.released for job in settled)
            if released:
                await self.wake_workers("released")
        return released, len(settled) - released

    async def reclaim_expired(self, limit: int = RECLAIM_LIMIT) -> list[ReclaimedJob]:
        """Take back the jobs of workers whose lease expired more than a grace period ago
        and that no longer heartbeat, or whose lease is long past (each lost attempt
        counts)."""
        params = {
            "limit": limit,
            "grace_s": RECLAIM_GRACE_S,
            "live_grace_s": RECLAIM_LIVE_GRACE_S,
            "stale_s": WORKER_STALE_S,
        }
        async with self.transaction():
            taken = await self._all(ReclaimedJob, "reclaim_expired", params)
            if any(job.status == "queued" for job in taken):
                await self.wake_workers("reclaimed")
        return taken

    async def next_due_at(self) -> datetime | None:
        value = await self._value("next_due_at")
        return value if isinstance(value, datetime) else None

    async def statuses(self, tenant_ids: Sequence[UUID]) -> dict[UUID, QueueStatus]:
        """Job counts by status of each existing tenant among these (`queued` as pending)."""
        rows = await self._rows(
            kwargs_row(_status_row), "queue_statuses", {"tenant_ids": list(tenant_ids)}
        )
        return dict(rows)

    async def depth(self) -> list[QueueDepth]:
        return await self._all(QueueDepth, "queue_depth")

    async def throughput(self) -> Throughput:
        found = await self._one(Throughput, "throughput")
        return found or Throughput(0, 0)

    async def delete_finished(self, days: int, limit: int) -> int:
        """Retention: one batch of jobs finished more than `days` ago; rows deleted."""
        return await self._run("delete_finished_jobs", {"days": days, "limit": limit})

    async def delete_failures(self, days: int, limit: int) -> int:
        return await self._run("delete_old_failures", {"days": days, "limit": limit})
