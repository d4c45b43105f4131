"""The operator's actions on the queue (DESIGN §15): retry a failed job, cancel a waiting one,
pause and resume claiming. Each is one transaction with its audit row (DESIGN §12).

Callers open the session with the caller's scope: Row Level Security then hides other
organisations' jobs, which therefore answer as unknown (404), never as forbidden."""

import base64
import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from aoer.errors import (
    ConcurrencyConflict,
    Conflict,
    DuplicateKey,
    InactiveTenant,
    InvalidInput,
    UnknownJob,
)
from aoer.store import Session
from aoer.store.audit import AuditEntry
from aoer.store.console import JobTenant

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts, as the audit log records it."""

    subject: str
    role: str
    ip: str | None = None


class NotFailed(Conflict):
    """A retry of a job that is not failed (any more: a second click retries nothing)."""


class NotQueued(Conflict):
    """A cancel of a job that is not waiting (any more: running, or finished)."""


class JobBusy(Conflict):
    """Another transaction holds the job (a worker's batch settling it, as a rule)."""


async def _locked(session: Session, job_id: UUID, wanted: str) -> JobTenant | None:
    """The job, locked for the change that follows; a job another transaction holds past the
    lock wait (a batch in flight: the row lock of its completion) is a 409 saying so, where
    a raw lock timeout said nothing of the job."""
    try:
        return await session.console.lock_job(job_id)
    except ConcurrencyConflict:
        raise JobBusy(
            f"job {job_id} is held by another transaction right now, most likely a worker's"
            f" batch settling it (so it is processing): {wanted}; `aoer jobs show {job_id}`"
            " says how long it has run"
        ) from None


@dataclass(frozen=True, slots=True)
class Retried:
    job_id: UUID  # the job asked for
    tenant_id: UUID
    queued_job_id: UUID  # the job that will run: the same, or the tenant's waiting job
    coalesced: bool


@dataclass(frozen=True, slots=True)
class Cancelled:
    job_id: UUID
    tenant_id: UUID


def parse_job_id(value: UUID | str) -> UUID:
    """A job id as a UUID, or a clear error naming the bad value."""
    if isinstance(value, UUID):
        return value
    try:
        return UUID(str(value))
    except ValueError:
        raise InvalidInput(f"malformed job id {value!r}: expected a UUID") from None


async def retry(session: Session, job_id: UUID, actor: Actor) -> Retried:
    """A failed job back to the queue with its attempts reset. When its tenant already has a
    waiting job (one per tenant), that job carries the retry: coalesced."""
    try:
        async with session.transaction():
            job = await _locked(session, job_id, "only a failed job can be retried")
            if job is None:
                raise UnknownJob(f"unknown job {job_id}")
            if job.status != "failed":
                raise NotFailed(f"job {job_id} is {job.status}: only a failed job can be retried")
            if not job.active:
                raise InactiveTenant(f"job {job_id}'s tenant {job.tenant_id} is inactive")
            waiting = await session.console.coalesce_retry(job.tenant_id, job.priority)
            if waiting is None:
                await session.console.requeue_failed(job_id)
            await session.jobs.wake_workers(job.priority)
            details: dict[str, object] = {"priority": job.priority}
            if waiting is not None:
                details["coalescedInto"] = str(waiting)
            await session.audit.record(
                AuditEntry(
                    actor=actor.subject,
                    role=actor.role,
                    action="job.retry",
                    org_id=job.org_id,
                    tenant_id=job.tenant_id,
                    target=str(job_id),
                    details=details,
                    ip=actor.ip,
                )
            )
    except DuplicateKey:
        # A new job for the tenant was queued between the two statements: ours lost.
        raise Conflict(
            f"job {job_id}: its tenant was queued meanwhile; retry again to coalesce"
        ) from None
    logger.info(
        "job %s retried by %s%s",
        job_id,
        actor.subject,
        f" (coalesced into waiting job {waiting})" if waiting else "",
        extra={"job_id": str(job_id), "tenant_id": str(job.tenant_id), "action": "job.retry"},
    )
    return Retried(job_id, job.tenant_id, waiting or job_id, waiting is not None)


async def cancel(session: Session, job_id: UUID, actor: Actor) -> Cancelled:
    """Remove a waiting job; a job being processed, or already finished, stays (409)."""
    async with session.transaction():
        job = await _locked(session, job_id, "only a queued job can be cancelled")
        if job is None:
            raise UnknownJob(f"unknown job {job_id}")
        if job.status != "queued" or not await session.console.delete_queued(job_id):
            raise NotQueued(
                f"job {job_id} is {job.status}: only a queued job can be cancelled"
                + (" (it is running now and will finish)" if job.status == "processing" else "")
            )
        await session.audit.record(
            AuditEntry(
                actor=actor.subject,
                role=actor.role,
                action="job.cancel",
                org_id=job.org_id,
                tenant_id=job.tenant_id,
                target=str(job_id),
                details={"priority": job.priority},
                ip=actor.ip,
            )
        )
    logger.info(
        "job %s cancelled by %s",
        job_id,
        actor.subject,
        extra={"job_id": str(job_id), "tenant_id": str(job.tenant_id), "action": "job.cancel"},
    )
    return Cancelled(job_id, job.tenant_id)


async def set_paused(session: Session, paused: bool, actor: Actor) -> bool:
    """Pause (workers claim nothing more, finish what they hold; enqueues still work) or
    resume (workers wake at once). Whether the state changed; audited either way."""
    action = "queue.pause" if paused else "queue.resume"
    async with session.transaction():
        changed = await session.console.set_paused(paused, actor.subject)
        await session.audit.record(
            AuditEntry(
                actor=actor.subject,
                role=actor.role,
                action=action,
                details={"changed": changed},
                ip=actor.ip,
            )
        )
    logger.warning(
        "[AOER] Queue %s by %s",
        "paused" if paused else "resumed",
        actor.subject,
        extra={"action": action},
    )
    return changed


CURSOR_SEPARATOR = "|"


def encode_cursor(created_at: datetime, row_id: UUID) -> str:
    """The keyset cursor after a row (a job, an alert), opaque to clients (URL-safe
    base64)."""
    raw = f"{created_at.isoformat()}{CURSOR_SEPARATOR}{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The row a cursor points after; InvalidInput when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, job_id = raw.partition(CURSOR_SEPARATOR)
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return moment, UUID(job_id)
    except ValueError:  # bad base64, bytes, timestamp or UUID alike
        raise InvalidInput(
            f"malformed cursor {cursor[:40]!r}: pass the nextBefore of a previous page"
        ) from None
