"""The operator console's API (DESIGN §15): jobs (list, detail, retry, cancel), the queue's
pause switch, and the live workers.

Who may do what: an admin everything; an organisation reads and acts on its own tenants' jobs
(Row Level Security, through the caller's scoped session, hides the rest: they answer 404);
a tenant reads its own jobs, read-only; a service token (ingest, enqueue, cron) none of it.
Pausing, resuming and the worker list are the admin's. Every action is audited.
"""

from datetime import datetime
from typing import Annotated, Any, Final, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import Field

from aoer.api.auth import ROLES, Principal, ensure_tenant_access, require_admin, require_roles
from aoer.api.context import ApiContext, Context
from aoer.api.responses import AUTHENTICATED, error_responses
from aoer.api.schemas import Camel
from aoer.constants import WORKER_STALE_S
from aoer.errors import InvalidInput, UnknownJob
from aoer.queue import console
from aoer.store.console import JOB_PAGE_MAX, Attempt, JobFilter, JobRow, WorkerRow
from aoer.types import JobStatus, Priority

router = APIRouter(tags=["console"])

# Roles by what they may do here; an organisation role, where the token service knows one,
# joins the readers and actors (its reach is its own tenants, by Row Level Security).
CONSOLE_READERS: Final = tuple(role for role in ROLES if role != "service")
CONSOLE_ACTORS: Final = tuple(role for role in ROLES if role not in ("service", "tenant"))
DEFAULT_PAGE: Final = 50

Reader = Annotated[Principal, Depends(require_roles(*CONSOLE_READERS))]
JobActor = Annotated[Principal, Depends(require_roles(*CONSOLE_ACTORS))]
Admin = Annotated[Principal, Depends(require_admin)]
JobId = Annotated[UUID, "the job's UUID"]


class JobOut(Camel):
    id: UUID
    tenant_id: UUID
    tenant_name: str
    priority: Priority
    status: JobStatus
    retry_count: int = Field(description="Attempts spent (failed ones)")
    max_retries: int
    scheduled_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    error_message: str | None
    locked_by: str | None = Field(description="The worker holding (or that last held) it")
    lease_expires_at: datetime | None = Field(
        default=None,
        description="While processing: when its worker's lease runs out (renewed every third "
        "of AOER_LEASE_SECONDS while the worker lives; past it, another worker takes it back)",
    )
    created_at: datetime
    updated_at: datetime


class JobsOut(Camel):
    jobs: list[JobOut]
    next_before: str | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page"
    )


class AttemptOut(Camel):
    id: UUID
    attempt: int = Field(description="Which attempt failed (1 = the first)")
    error_message: str
    error_data: dict[str, Any]
    created_at: datetime


class JobDetailOut(JobOut):
    attempts: list[AttemptOut] = Field(description="Failed attempts, oldest first")


class RetriedOut(Camel):
    job_id: UUID
    tenant_id: UUID
    status: JobStatus = "queued"
    queued_job_id: UUID = Field(description="The job that will run: this one, or the waiting one")
    coalesced: bool = Field(description="The tenant already had a waiting job; it carries this")
    message: str


class CancelledOut(Camel):
    job_id: UUID
    tenant_id: UUID
    cancelled: bool = True


class QueueStateOut(Camel):
    paused: bool
    changed_at: datetime
    changed_by: str | None
    changed: bool | None = Field(default=None, description="Whether this request changed it")


class WorkerOut(Camel):
    id: str
    host: str
    pid: int
    started_at: datetime
    last_heartbeat_at: datetime
    jobs_in_hand: int
    paused: bool = Field(description="Whether the worker has heard the queue is paused")
    alive: bool = Field(description=f"Heard from within {WORKER_STALE_S:.0f} s; else gone")


class WorkersOut(Camel):
    workers: list[WorkerOut]
    stale_after_seconds: float


def actor_of(principal: Principal, request: Request) -> console.Actor:
    return console.Actor(
        principal.subject, principal.role, request.client.host if request.client else None
    )


def job_out(row: JobRow) -> JobOut:
    return JobOut.of(row)


def detail_out(row: JobRow, attempts: list[Attempt]) -> JobDetailOut:
    return JobDetailOut.model_validate(
        {**JobOut.of(row).model_dump(), "attempts": [AttemptOut.of(a) for a in attempts]}
    )


def worker_out(row: WorkerRow) -> WorkerOut:
    return WorkerOut.of(row)


def cursor_param(before: str | None) -> tuple[datetime | None, UUID | None]:
    if before is None:
        return None, None
    try:
        return console.decode_cursor(before)
    except InvalidInput as exc:
        issue = {
            "type": "value_error",
            "loc": ("query", "before"),
            "msg": str(exc),
            "input": before,
        }
        raise RequestValidationError([issue]) from None


@router.get(
    "/api/jobs",
    response_model=JobsOut,
    responses=error_responses(*AUTHENTICATED, 422),
    summary="Jobs, newest first (keyset paging)",
    description="Admins see every job; an organisation its tenants' jobs; a tenant its own.",
)
async def list_jobs(
    principal: Reader,
    ctx: Context,
    status: Annotated[
        # One Literal, not a union with JobStatus: a bad value then reads "Input should be
        # 'queued', …" under `status`, not under pydantic's name for a union's member.
        Literal["queued", "processing", "completed", "failed", "pending"] | None,
        Query(description="`pending` is `queued`, as the status counts name it (DESIGN §4)"),
    ] = None,
    priority: Priority | None = None,
    tenant_id: Annotated[UUID | None, Query(alias="tenantId")] = None,
    limit: Annotated[int, Query(ge=1, le=JOB_PAGE_MAX)] = DEFAULT_PAGE,
    before: Annotated[
        str | None, Query(max_length=200, description="`nextBefore` of the previous page")
    ] = None,
) -> JobsOut:
    before_at, before_id = cursor_param(before)
    if tenant_id is not None:
        await ensure_tenant_access(principal, tenant_id)  # 403 naming it, not an empty page
    wanted: JobStatus | None = "queued" if status == "pending" else status
    f = JobFilter(wanted, priority, tenant_id, before_at, before_id, limit)
    async with ctx.session(principal) as session:
        page = await session.console.jobs(f)
    last = page.last
    return JobsOut(
        jobs=[job_out(r) for r in page.rows],
        next_before=console.encode_cursor(last.created_at, last.id) if last else None,
    )


@router.get(
    "/api/jobs/{job_id}",
    response_model=JobDetailOut,
    responses=error_responses(*AUTHENTICATED, 404, 422),
    summary="A job with each failed attempt's error",
)
async def get_job(job_id: JobId, principal: Reader, ctx: Context) -> JobDetailOut:
    async with ctx.session(principal) as session:
        row = await session.console.job(job_id)
        if row is None:
            raise UnknownJob(f"unknown job {job_id}")
        attempts = await session.console.attempts(job_id)
    return detail_out(row, attempts)


@router.post(
    "/api/jobs/{job_id}/retry",
    response_model=RetriedOut,
    responses=error_responses(*AUTHENTICATED, 404, 409, 422),
    summary="A failed job back to the queue, its attempts reset",
    description="When the tenant already has a waiting job, that job carries the retry "
    "(`coalesced`: one waiting job per tenant).",
)
async def retry_job(
    job_id: JobId, principal: JobActor, request: Request, ctx: Context
) -> RetriedOut:
    async with ctx.session(principal) as session:
        done = await console.retry(session, job_id, actor_of(principal, request))
    message = (
        f"coalesced into the tenant's waiting job {done.queued_job_id}"
        if done.coalesced
        else "queued again"
    )
    return RetriedOut(
        job_id=done.job_id,
        tenant_id=done.tenant_id,
        queued_job_id=done.queued_job_id,
        coalesced=done.coalesced,
        message=message,
    )


@router.post(
    "/api/jobs/{job_id}/cancel",
    response_model=CancelledOut,
    responses=error_responses(*AUTHENTICATED, 404, 409, 422),
    summary="Remove a queued job (a running or finished one answers 409)",
)
async def cancel_job(
    job_id: JobId, principal: JobActor, request: Request, ctx: Context
) -> CancelledOut:
    async with ctx.session(principal) as session:
        done = await console.cancel(session, job_id, actor_of(principal, request))
    return CancelledOut(job_id=done.job_id, tenant_id=done.tenant_id)


async def _set_paused(
    paused: bool, principal: Principal, request: Request, ctx: ApiContext
) -> QueueStateOut:
    async with ctx.session(principal) as session:
        changed = await console.set_paused(session, paused, actor_of(principal, request))
        state = await session.console.queue_state()
    return QueueStateOut(
        paused=state.paused,
        changed_at=state.changed_at,
        changed_by=state.changed_by,
        changed=changed,
    )


@router.post(
    "/api/queue/pause",
    response_model=QueueStateOut,
    responses=error_responses(*AUTHENTICATED),
    summary="Pause claiming (admin)",
    description="Every worker stops claiming within a second and finishes what it holds; "
    "enqueues still succeed.",
)
async def pause(principal: Admin, request: Request, ctx: Context) -> QueueStateOut:
    return await _set_paused(True, principal, request, ctx)


@router.post(
    "/api/queue/resume",
    response_model=QueueStateOut,
    responses=error_responses(*AUTHENTICATED),
    summary="Resume claiming (admin); workers wake at once",
)
async def resume(principal: Admin, request: Request, ctx: Context) -> QueueStateOut:
    return await _set_paused(False, principal, request, ctx)


@router.get(
    "/api/queue/state",
    response_model=QueueStateOut,
    responses=error_responses(*AUTHENTICATED),
    summary="Whether the queue is paused",
)
async def queue_state(principal: Reader, ctx: Context) -> QueueStateOut:
    async with ctx.session(principal) as session:
        state = await session.console.queue_state()
    # Who paused is an operator's account (`cli:root`): an administrator's to read.
    by = state.changed_by if principal.role == "admin" else None
    return QueueStateOut(paused=state.paused, changed_at=state.changed_at, changed_by=by)


@router.get(
    "/api/workers",
    response_model=WorkersOut,
    responses=error_responses(*AUTHENTICATED),
    summary="Workers by heartbeat (admin): live ones first, then those gone quiet",
)
async def workers(principal: Admin, ctx: Context) -> WorkersOut:
    async with ctx.session(principal) as session:
        rows = await session.console.workers(WORKER_STALE_S)
    return WorkersOut(workers=[worker_out(r) for r in rows], stale_after_seconds=WORKER_STALE_S)
