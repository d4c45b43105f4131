"""The operator console's rows (DESIGN §15): the job list and detail, retry and cancel, the
queue's pause switch, worker heartbeats, throughput and latency."""

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal
from uuid import UUID

from aoer.constants import QUEUE_CONTROL_CHANNEL
from aoer.store.statements import Statements
from aoer.types import JobStatus, Page, Priority

JOB_PAGE_MAX: Final = 500
# The first page starts after every row: the list is always a keyset range scan.
FIRST_PAGE_AT: Final = datetime.max.replace(tzinfo=UTC)
FIRST_PAGE_ID: Final = UUID(int=(1 << 128) - 1)


@dataclass(frozen=True, slots=True)
class JobRow:
    id: UUID
    tenant_id: UUID
    tenant_name: str
    priority: Priority
    status: JobStatus
    retry_count: int
    max_retries: int
    scheduled_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    locked_by: str | None
    lease_expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Attempt:
    """One failed attempt of a job (an `aoer_failures` row)."""

    id: UUID
    attempt: int
    error_message: str
    error_data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class JobTenant:
    """The job a retry or cancel is about, locked: its tenant and current state."""

    tenant_id: UUID
    org_id: UUID | None
    active: bool
    status: JobStatus
    priority: Priority


@dataclass(frozen=True, slots=True)
class JobFilter:
    status: JobStatus | None = None
    priority: Priority | None = None
    tenant_id: UUID | None = None
    before_at: datetime | None = None  # the keyset cursor: the last row of the previous page
    before_id: UUID | None = None
    limit: int = 50


@dataclass(frozen=True, slots=True)
class QueueState:
    paused: bool
    changed_at: datetime
    changed_by: str | None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a worker learns from its heartbeat."""

    paused: bool  # the operator's pause switch
    live_workers: int  # workers heard from within the stale threshold, this one included
    database_here: bool  # the database runs on the worker's host
    announced: bool  # this beat registered the worker and told the others


@dataclass(frozen=True, slots=True)
class WorkerRow:
    id: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat_at: datetime
    jobs_in_hand: int
    paused: bool
    alive: bool


@dataclass(frozen=True, slots=True)
class MinuteCount:
    minute: datetime
    jobs: int


@dataclass(frozen=True, slots=True)
class HourLatency:
    hour: datetime
    jobs: int
    wait_p50_s: float
    wait_p95_s: float
    run_p50_s: float
    run_p95_s: float


ListQuery = Literal[
    "list_jobs",
    "list_jobs_completed",
    "list_jobs_failed",
    "list_jobs_processing",
    "list_jobs_queued",
    "list_jobs_by_priority",
    "list_jobs_by_tenant",
]


# The priority partial index (migration 0010) holds the rare values; `low` (every cron job) is
# read per state, where it is dense.
UNINDEXED_PRIORITY: Final = "low"


def list_query(f: JobFilter) -> ListQuery:
    """The statement whose index leads with the most selective filter given."""
    if f.tenant_id is not None:
        return "list_jobs_by_tenant"
    if f.status == "failed":
        return "list_jobs_failed"
    if f.status == "queued":
        return "list_jobs_queued"
    if f.priority is not None and f.priority != UNINDEXED_PRIORITY:
        return "list_jobs_by_priority"
    if f.status == "completed":
        return "list_jobs_completed"
    if f.status == "processing":
        return "list_jobs_processing"
    return "list_jobs"


# PostgreSQL's CONTEXT of a statement that waited on a row: `while locking tuple (1,2) in
# relation "aoer_summary"` (also updating, deleting).
_LOCK_WAIT = re.compile(
    r'while (?:locking|updating|deleting) tuple \((\d+),(\d+)\) in relation "(\w+)"'
)
LOCK_HOLDERS_SHOWN = 3


@dataclass(frozen=True, slots=True)
class LockHolder:
    pid: int
    application: str | None
    state: str | None
    transaction_s: float | None

    def __str__(self) -> str:
        parts = [p for p in (self.application, self.state) if p]
        if self.transaction_s is not None:
            parts.append(f"transaction open {self.transaction_s:.0f}s")
        return f"pid {self.pid}" + (f" ({', '.join(parts)})" if parts else "")


@dataclass(frozen=True, slots=True)
class _LockedTenant:
    tenant_id: UUID
    tenant_name: str


@dataclass(frozen=True, slots=True)
class LockWait:
    """What a statement that gave up waiting on a row lock waited on, as far as it shows."""

    relation: str
    tenant_id: UUID | None
    tenant_name: str | None
    holders: list[LockHolder]

    @property
    def row(self) -> str:
        """Whose row it was, without the sessions: what a job's failure, which its tenant's
        organisation reads too, may say."""
        if self.tenant_id is None:
            return f"waited on a {self.relation} row"
        return f"waited on the {self.relation} row of {self.tenant_name} ({self.tenant_id})"

    def __str__(self) -> str:
        """The row and the sessions that may hold it, for the operator's log."""
        row = self.row
        if not self.holders:
            return f"{row}; no other session holds a lock on {self.relation} now"
        held = ", ".join(str(h) for h in self.holders)
        return f"{row}, held by one of (oldest transaction first): {held}"


def lock_wait_place(diagnostics: str | None) -> tuple[str, str] | None:
    """The relation and tuple id a lock wait's diagnostics name, if any."""
    found = _LOCK_WAIT.search(diagnostics or "")
    return (found[3], f"({found[1]},{found[2]})") if found else None


class Console(Statements):
    async def jobs(self, f: JobFilter) -> Page[JobRow]:
        """One page, newest first, strictly after the cursor (when given), and whether
        another follows."""
        limit = max(1, min(f.limit, JOB_PAGE_MAX))
        params = {
            "status": f.status,
            "priority": f.priority,
            "tenant_id": f.tenant_id,
            "before_at": f.before_at or FIRST_PAGE_AT,
            "before_id": f.before_id or FIRST_PAGE_ID,
            "limit": limit + 1,
        }
        return Page.of(await self._all(JobRow, list_query(f), params), limit)

    async def job(self, job_id: UUID) -> JobRow | None:
        return await self._one(JobRow, "get_job", {"job_id": job_id})

    async def attempts(self, job_id: UUID) -> list[Attempt]:
        return await self._all(Attempt, "job_attempts", {"job_id": job_id})

    async def lock_job(self, job_id: UUID) -> JobTenant | None:
        """Lock the job (inside a transaction) and say whose it is and how it stands."""
        return await self._one(JobTenant, "job_tenant", {"job_id": job_id})

    async def coalesce_retry(self, tenant_id: UUID, priority: Priority) -> UUID | None:
        """Fold a retry into the tenant's waiting job; its id, or None when none waits."""
        value = await self._value("coalesce_retry", {"tenant_id": tenant_id, "priority": priority})
        return value if isinstance(value, UUID) else None

    async def requeue_failed(self, job_id: UUID) -> bool:
        return await self._value("requeue_failed", {"job_id": job_id}) is not None

    async def delete_queued(self, job_id: UUID) -> bool:
        return await self._value("delete_queued_job", {"job_id": job_id}) is not None

    async def queue_state(self) -> QueueState:
        found = await self._one(QueueState, "queue_state")
        return found or QueueState(False, FIRST_PAGE_AT, None)

    async def set_paused(self, paused: bool, actor: str) -> bool:
        """Pause or resume and tell every worker (on commit); whether the state changed."""
        changed = await self._value("set_paused", {"paused": paused, "actor": actor})
        await self._run(
            "notify_queue",
            {"channel": QUEUE_CONTROL_CHANNEL, "payload": "paused" if paused else "resumed"},
        )
        return bool(changed)

    async def heartbeat(
        self,
        worker_id: str,
        *,
        host: str,
        pid: int,
        started_at: datetime,
        jobs_in_hand: int,
        stale_s: float,
    ) -> Heartbeat:
        """Record that the worker is alive; whether the queue is paused, and how many workers
        share the database (registering a worker tells the others, on commit)."""
        params = {
            "worker_id": worker_id,
            "host": host,
            "pid": pid,
            "started_at": started_at,
            "jobs_in_hand": jobs_in_hand,
            "stale_s": stale_s,
            "channel": QUEUE_CONTROL_CHANNEL,
        }
        beat = await self._one(Heartbeat, "worker_heartbeat", params)
        assert beat is not None  # an upsert returns its row
        return beat

    async def worker_gone(self, worker_id: str) -> None:
        """Remove a stopping worker's row and tell the others (on commit)."""
        await self._run("worker_gone", {"worker_id": worker_id, "channel": QUEUE_CONTROL_CHANNEL})

    async def lock_wait(self, diagnostics: str | None) -> LockWait | None:
        """Whose row a lock timeout waited on and which sessions may hold it (None when the
        diagnostics name no row): what an operator otherwise digs out of pg_locks."""
        place = lock_wait_place(diagnostics)
        if place is None:
            return None
        relation, tid = place
        params = {"relation": relation, "tid": tid}
        row = await self._one(_LockedTenant, "lock_wait_row", params)
        holders = await self._all(
            LockHolder, "lock_holders", {"relation": relation, "limit": LOCK_HOLDERS_SHOWN}
        )
        if row is None:
            return LockWait(relation, None, None, holders)
        return LockWait(relation, row.tenant_id, row.tenant_name, holders)

    async def workers(self, stale_s: float) -> list[WorkerRow]:
        return await self._all(WorkerRow, "list_workers", {"stale_s": stale_s})

    async def delete_gone_workers(self, gone_s: float) -> int:
        return await self._run("delete_gone_workers", {"gone_s": gone_s})

    async def throughput(self, hours: int) -> list[MinuteCount]:
        return await self._all(MinuteCount, "throughput_per_minute", {"hours": hours})

    async def latency(self, hours: int) -> list[HourLatency]:
        return await self._all(HourLatency, "latency_per_hour", {"hours": hours})
