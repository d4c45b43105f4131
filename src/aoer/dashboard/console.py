"""The operator console's pages (DESIGN §15): `/dashboard/jobs` (filters, pause/resume,
workers, throughput and latency charts, the job list) and `/dashboard/jobs/{id}` (detail,
attempts, retry/cancel). Administrators only.

Actions are plain HTML forms posting to `/dashboard/...` with the session cookie: the API's
auth refuses them unless they come from this dashboard's own pages (`aoer.api.origin`), and
each answers with a redirect back (post/redirect/get) naming what happened."""

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Final
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from aoer.api.auth import Principal, current_principal
from aoer.api.context import Context
from aoer.api.errors import Unauthorized, status_for
from aoer.api.routes.console import actor_of
from aoer.constants import CONSOLE_CHART_HOURS, JOB_STATUSES, PRIORITIES, WORKER_STALE_S
from aoer.dashboard.charts import Chart, Series, line_chart, per_minute
from aoer.dashboard.render import page
from aoer.dashboard.routes import PagePrincipal, denied_page, not_found_page, sign_in_page
from aoer.errors import AoerError, InvalidInput, UnknownJob
from aoer.queue import console as actions
from aoer.store.console import Attempt, JobFilter, JobRow, QueueState, WorkerRow
from aoer.store.tenants import TenantName
from aoer.types import Page

router = APIRouter(include_in_schema=False)

PAGE_SIZE: Final = 50
NOTICES: Final = {
    "retried": "Job queued again.",
    "coalesced": "The dealership already had a waiting job; it now carries this retry.",
    "cancelled": "Job cancelled.",
    # A second click (or a page left open) on a job that has moved on: its page says where it is.
    "not_failed": "Not retried: only a failed job can be retried, and this one is not failed.",
    "not_queued": "Not cancelled: only a waiting job can be cancelled, and this one is not.",
    "gone": "That job is no longer waiting: it was cancelled, or it no longer exists.",
    "paused": "Queue paused: workers finish what they hold and claim nothing more.",
    "resumed": "Queue resumed: workers claim again.",
}


@dataclass(frozen=True, slots=True)
class JobsView:
    jobs: list[JobRow]
    next_before: str | None
    filter: JobFilter
    tenant_text: str  # the dealership filter as typed: a name or an id
    tenant_matches: Sequence[TenantName]  # a name naming none, or several: those shown
    more_matches: bool  # more fit than are shown
    tenant_picked: TenantName | None  # the one dealership a typed name named
    state: QueueState
    workers: list[WorkerRow]
    throughput: Chart
    latency: Chart
    completed_24h: int
    ignored: Sequence[str] = ()  # what the link asked that the page could not apply, in words


def _parse_filter(
    status: str | None, priority: str | None, tenant: str | None, before: str | None
) -> tuple[JobFilter, list[str]]:
    """Query parameters → a filter, and what was ignored, in words: an unknown status or
    priority (a mistyped or old link) lists every one, a bad cursor starts from the newest,
    and the page says so rather than look filtered."""
    tenant_id = None
    if tenant:
        try:
            tenant_id = UUID(tenant.strip())
        except ValueError:
            tenant_id = None
    ignored = []
    before_at = before_id = None
    if before:
        try:
            before_at, before_id = actions.decode_cursor(before)
        except InvalidInput:
            ignored.append("the link's page position is not readable: the newest jobs are shown")
    wanted = "queued" if status == "pending" else status  # as the status counts name it
    known_status = next((s for s in JOB_STATUSES if s == wanted), None)
    if status and known_status is None:
        ignored.append(
            f"“{status}” is not a job status ({', '.join(JOB_STATUSES)}): every status is shown"
        )
    known_priority = next((p for p in PRIORITIES if p == priority), None)
    if priority and known_priority is None:
        ignored.append(
            f"“{priority}” is not a priority ({', '.join(PRIORITIES)}): every priority is shown"
        )
    f = JobFilter(
        status=known_status,
        priority=known_priority,
        tenant_id=tenant_id,
        before_at=before_at,
        before_id=before_id,
        limit=PAGE_SIZE,
    )
    return f, ignored


def _filtered_tenant(f: JobFilter, rows: Sequence[JobRow]) -> TenantName | None:
    """The dealership a filter by id shows, named from its jobs (a later page of a name's)."""
    if f.tenant_id is None or not rows:
        return None
    return TenantName(f.tenant_id, rows[0].tenant_name or str(f.tenant_id))


def jobs_url(f: JobFilter, **changes: object) -> str:
    params: dict[str, object] = {
        "status": f.status,
        "priority": f.priority,
        "tenant": f.tenant_id,
    }
    params.update(changes)
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return "/dashboard/jobs" + (f"?{query}" if query else "")


def charts(
    counts: list[tuple[datetime, int]], latency: list[tuple[datetime, float, float, float, float]]
) -> tuple[Chart, Chart]:
    end = datetime.now(UTC)
    start = end - timedelta(hours=CONSOLE_CHART_HOURS)
    total = sum(n for _, n in counts)
    peak = max((n for _, n in counts), default=0)
    throughput = line_chart(
        "Jobs completed per minute",
        [Series("completed per minute", "s-throughput", per_minute(counts, start, end))],
        start=start,
        end=end,
        unit="",
        description=f"Jobs completed per minute over the last {CONSOLE_CHART_HOURS} hours: "
        f"{total:,} in all, at most {peak:,} in one minute.",
    )
    hours = [h + timedelta(minutes=30) for h, *_ in latency]  # each hour drawn at its middle
    worst_wait = max((w95 for _, _, w95, _, _ in latency), default=0.0)
    worst_run = max((r95 for *_, r95 in latency), default=0.0)
    latency_chart = line_chart(
        "Queue wait and run time per hour",
        [
            Series("wait p50", "s-wait", [(t, v[1]) for t, v in zip(hours, latency, strict=True)]),
            Series(
                "wait p95", "s-wait p95", [(t, v[2]) for t, v in zip(hours, latency, strict=True)]
            ),
            Series("run p50", "s-run", [(t, v[3]) for t, v in zip(hours, latency, strict=True)]),
            Series(
                "run p95", "s-run p95", [(t, v[4]) for t, v in zip(hours, latency, strict=True)]
            ),
        ],
        start=start,
        end=end,
        unit=" s",
        description=f"Per hour over the last {CONSOLE_CHART_HOURS} hours: how long completed "
        f"jobs waited once due and how long they ran (50th and 95th percentiles); worst "
        f"hour's 95th percentile: wait {worst_wait:.2f} s, run {worst_run:.2f} s.",
    )
    return throughput, latency_chart


# Administrators see every job; an organisation its own dealerships' jobs (Row Level Security
# limits its session), with retry and cancel. Pausing the queue and the worker list are the
# administrators' alone (they concern every organisation).
CONSOLE_ROLES = ("admin", "org")
NAME_MATCHES_SHOWN = 8  # dealerships listed when a typed name fits several
CONSOLE_DENIED = "The jobs console is for administrators and organisations."


@router.get("/dashboard/jobs")
async def jobs_page(
    who: PagePrincipal,
    ctx: Context,
    status: str | None = None,
    priority: str | None = None,
    tenant: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[str | None, Query(max_length=200)] = None,
    notice: str | None = None,
) -> Response:
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role not in CONSOLE_ROLES:
        return denied_page(who, CONSOLE_DENIED)
    f, ignored = _parse_filter(status, priority, tenant, before)
    tenant_text = (tenant or "").strip()
    matches: Sequence[TenantName] = ()
    picked_one: TenantName | None = None
    async with ctx.session(who) as session:
        if tenant_text and f.tenant_id is None:
            # A name, or part of one: the one dealership it names, else none is listed
            # (an unreadable filter used to list every job).
            matches = await session.tenants.named(tenant_text, NAME_MATCHES_SHOWN + 1)
            exact = [m for m in matches if m.name.lower() == tenant_text.lower()]
            picked = exact if len(exact) == 1 else matches if len(matches) == 1 else []
            if picked:
                picked_one, matches = picked[0], ()
                f = replace(f, tenant_id=picked_one.id)
        if tenant_text and f.tenant_id is None:
            jobs: Page[JobRow] = Page([], more=False)
        else:
            jobs = await session.console.jobs(f)
        state = await session.console.queue_state()
        workers = await session.console.workers(WORKER_STALE_S) if who.role == "admin" else []
        counts = await session.console.throughput(CONSOLE_CHART_HOURS)
        latency = await session.console.latency(CONSOLE_CHART_HOURS)
    rows, last = jobs.rows, jobs.last
    throughput, latency_chart = charts(
        [(c.minute, c.jobs) for c in counts],
        [(h.hour, h.wait_p50_s, h.wait_p95_s, h.run_p50_s, h.run_p95_s) for h in latency],
    )
    view = JobsView(
        jobs=rows,
        next_before=actions.encode_cursor(last.created_at, last.id) if last else None,
        filter=f,
        tenant_text=tenant_text,
        tenant_matches=matches[:NAME_MATCHES_SHOWN],
        more_matches=len(matches) > NAME_MATCHES_SHOWN,
        tenant_picked=picked_one or _filtered_tenant(f, rows),
        state=state,
        workers=workers,
        throughput=throughput,
        latency=latency_chart,
        completed_24h=sum(c.jobs for c in counts),
        ignored=ignored,
    )
    return page(
        "jobs.html",
        principal=who,
        active_nav="jobs",
        view=view,
        statuses=JOB_STATUSES,
        priorities=tuple(reversed(PRIORITIES)),
        jobs_url=lambda **changes: jobs_url(f, **changes),
        paged=before is not None,
        notice=NOTICES.get(notice or ""),
        stale_s=WORKER_STALE_S,
    )


@router.get("/dashboard/jobs/{job_id}")
async def job_page(
    job_id: str, who: PagePrincipal, ctx: Context, notice: str | None = None
) -> Response:
    if isinstance(who, str):
        return sign_in_page(who)
    if who.role not in CONSOLE_ROLES:
        return denied_page(who, CONSOLE_DENIED)
    try:
        jid = UUID(job_id)
    except ValueError:
        return not_found_page(who, "There is no job at this address.")
    async with ctx.session(who) as session:
        job = await session.console.job(jid)
        attempts: list[Attempt] = await session.console.attempts(jid) if job else []
        state = await session.console.queue_state()
    if job is None:
        return not_found_page(who, "There is no job with this id (a cancelled job is removed).")
    return page(
        "job.html",
        principal=who,
        active_nav="jobs",
        job=job,
        attempts=attempts,
        state=state,
        notice=NOTICES.get(notice or ""),
    )


async def _admin_form(request: Request) -> Principal | Response:
    """The cookie's admin, checked like any API write (same-origin or refused), or the page
    that says why not."""
    try:
        who = await current_principal(request, None, request.cookies.get("aoer_session") or None)
    except Unauthorized as exc:
        return sign_in_page(str(exc))
    except AoerError as exc:  # a cross-site request: 403, nothing done
        return page(
            "error.html",
            status_for(exc),
            heading="Refused",
            message=str(exc),
            show_login_help=False,
        )
    if who.role not in CONSOLE_ROLES:
        return denied_page(who, CONSOLE_DENIED)
    return who


FormCaller = Annotated[Principal | Response, Depends(_admin_form)]


def _failed(who: Principal, exc: AoerError, heading: str) -> Response:
    return page(
        "error.html",
        status_for(exc),
        heading=heading,
        message=str(exc),
        show_login_help=False,
        principal=who,
    )


@router.post("/dashboard/jobs/{job_id}/retry")
async def retry_form(job_id: str, who: FormCaller, request: Request, ctx: Context) -> Response:
    if isinstance(who, Response):
        return who
    try:
        jid = actions.parse_job_id(job_id)
        async with ctx.session(who) as session:
            done = await actions.retry(session, jid, actor_of(who, request))
    except actions.NotFailed:
        return RedirectResponse(f"/dashboard/jobs/{jid}?notice=not_failed", 303)
    except AoerError as exc:
        return _failed(who, exc, "Could not retry the job")
    notice = "coalesced" if done.coalesced else "retried"
    return RedirectResponse(f"/dashboard/jobs/{done.queued_job_id}?notice={notice}", 303)


@router.post("/dashboard/jobs/{job_id}/cancel")
async def cancel_form(job_id: str, who: FormCaller, request: Request, ctx: Context) -> Response:
    if isinstance(who, Response):
        return who
    try:
        jid = actions.parse_job_id(job_id)
        async with ctx.session(who) as session:
            await actions.cancel(session, jid, actor_of(who, request))
    except actions.NotQueued:
        return RedirectResponse(f"/dashboard/jobs/{jid}?notice=not_queued", 303)
    except UnknownJob:  # cancelled already (a second click), or never ours to see
        return RedirectResponse("/dashboard/jobs?notice=gone", 303)
    except AoerError as exc:
        return _failed(who, exc, "Could not cancel the job")
    return RedirectResponse("/dashboard/jobs?notice=cancelled", 303)


@router.post("/dashboard/queue/{action}")
async def queue_form(action: str, who: FormCaller, request: Request, ctx: Context) -> Response:
    if isinstance(who, Response):
        return who
    if action not in ("pause", "resume"):
        return not_found_page(who, "There is no such queue action.")
    if who.role != "admin":
        return denied_page(who, "Only administrators pause or resume the queue.")
    paused = action == "pause"
    async with ctx.session(who) as session:
        await actions.set_paused(session, paused, actor_of(who, request))
    return RedirectResponse(f"/dashboard/jobs?notice={'paused' if paused else 'resumed'}", 303)
