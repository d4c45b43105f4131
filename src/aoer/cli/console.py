"""`aoer jobs`, `aoer queue`, `aoer workers`: the operator console on the command line
(DESIGN §15). Actions are audited as the local operator (`cli:<user>`, role admin)."""

import dataclasses
from datetime import UTC, datetime
from typing import Annotated, Any, Final
from uuid import UUID

import typer
from pydantic.alias_generators import to_camel
from rich.table import Table

from aoer import queue
from aoer.bootstrap import open_services
from aoer.cli.runner import (
    JsonOutput,
    cli_actor,
    console,
    emit_json,
    fail,
    json_time,
    run_command,
    show,
    table_time,
)
from aoer.config import Settings
from aoer.constants import JOB_STATUSES, RECLAIM_LIVE_GRACE_S, WORKER_STALE_S
from aoer.errors import UnknownJob
from aoer.queue import console as actions
from aoer.store.console import JOB_PAGE_MAX, JobFilter, JobRow
from aoer.types import JobStatus

jobs_app = typer.Typer(help="Jobs: list, show, retry, cancel", no_args_is_help=True)
queue_app = typer.Typer(help="The queue: pause, resume, status", no_args_is_help=True)

ID_WIDTH: Final = 36  # a UUID, never cut on a terminal either


def operator() -> actions.Actor:
    return actions.Actor(cli_actor(), "admin")


def as_json(row: object) -> dict[str, Any]:
    """A row as the API shows it: camelCase keys, ISO times, ids as strings."""
    if not dataclasses.is_dataclass(row) or isinstance(row, type):
        raise TypeError(f"not a row: {row!r}")
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(row).items():
        if isinstance(value, datetime):
            value = json_time(value)
        elif isinstance(value, UUID):
            value = str(value)
        out[to_camel(key)] = value
    return out


def parse_status(value: str | None) -> JobStatus | None:
    if value is None:
        return None
    if value == "pending":  # as `aoer status` and the status counts (DESIGN §4) name it
        return "queued"
    for status in JOB_STATUSES:
        if value == status:
            return status
    # As a bad priority or a malformed id is: bad input, exit 1 (README, CLI conventions).
    fail(f"unknown status {value!r}: expected one of {', '.join(JOB_STATUSES)} (or pending)")


@jobs_app.command("list")
def jobs_list(
    status: Annotated[
        str | None, typer.Option(help="queued, processing, completed or failed")
    ] = None,
    priority: Annotated[str | None, typer.Option(help="low, medium, high or urgent")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant's jobs (UUID)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=JOB_PAGE_MAX, help="Jobs per page")] = 50,
    before: Annotated[
        str | None, typer.Option(help="The cursor printed after the previous page")
    ] = None,
    as_json_flag: JsonOutput = False,
) -> None:
    """Jobs, newest first; prints the cursor of the next page when there is one."""
    wanted_status = parse_status(status)

    async def main(settings: Settings) -> None:
        before_at, before_id = actions.decode_cursor(before) if before else (None, None)
        f = JobFilter(
            status=wanted_status,
            priority=queue.parse_priority(priority) if priority else None,
            tenant_id=queue.parse_tenant_id(tenant) if tenant else None,
            before_at=before_at,
            before_id=before_id,
            limit=limit,
        )
        async with open_services(settings) as services, services.store.session() as session:
            page = await session.console.jobs(f)
        rows, last = page.rows, page.last
        cursor = actions.encode_cursor(last.created_at, last.id) if last else None
        if as_json_flag:
            emit_json({"jobs": [as_json(r) for r in rows], "nextBefore": cursor})
            return
        table = Table("id", "tenant", "priority", "status", "attempts", "created", "error")
        table.columns[0].no_wrap = True
        table.columns[0].min_width = ID_WIDTH
        for r in rows:
            table.add_row(
                str(r.id),
                r.tenant_name,
                r.priority,
                r.status,
                f"{r.retry_count}/{r.max_retries}",
                table_time(r.created_at),
                r.error_message or "",
            )
        show(table)
        if cursor:
            console.print(f"next page: --before {cursor}", highlight=False, soft_wrap=True)

    run_command(main)


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="The job's UUID")],
    as_json_flag: JsonOutput = False,
) -> None:
    """One job and each failed attempt's error."""

    async def main(settings: Settings) -> None:
        jid = actions.parse_job_id(job_id)
        async with open_services(settings) as services, services.store.session() as session:
            row = await session.console.job(jid)
            if row is None:
                raise UnknownJob(f"unknown job {jid}")
            attempts = await session.console.attempts(jid)
        if as_json_flag:
            emit_json({**as_json(row), "attempts": [as_json(a) for a in attempts]})
            return
        fields = as_json(row)
        width = max(map(len, fields))
        for key, value in fields.items():
            console.print(f"{key:<{width}}  {'-' if value is None else value}", highlight=False)
        if row.status == "processing" and row.started_at and row.lease_expires_at:
            console.print(in_flight(row, datetime.now(UTC)), highlight=False, soft_wrap=True)
        console.print(f"attempts ({len(attempts)} failed):", highlight=False)
        for previous, a in zip([None, *attempts], attempts, strict=False):
            if previous is not None and a.attempt <= previous.attempt:
                console.print("  -- attempts started over (a retry)", highlight=False)
            console.print(
                f"  #{a.attempt}  {table_time(a.created_at)}  {a.error_message}",
                highlight=False,
                soft_wrap=True,
            )

    run_command(main)


def in_flight(row: JobRow, now: datetime) -> str:
    """How long a processing job has run and what its lease says: a worker that died leaves
    it until the lease runs out, one that lives renews it (so a job running for minutes with
    a lease in the future is held by a live worker: a slow batch), except while its batch's
    statement holds the job's row (renewal skips it: a lease run out under a live worker is a
    batch still running, slow or waiting on a lock)."""
    assert row.started_at is not None
    assert row.lease_expires_at is not None
    running = (now - row.started_at).total_seconds()
    left = (row.lease_expires_at - now).total_seconds()
    lease = (
        f"its lease runs out in {left:.0f}s (renewed while worker {row.locked_by} lives)"
        if left >= 0
        else f"its lease ran out {-left:.0f}s ago: worker {row.locked_by} has not renewed it"
        " (gone, or still in the batch that holds the job: a running batch's jobs are not"
        " renewed, whether it is slow or waits on a lock); another worker takes the job back"
        " once that"
        f" worker stops heartbeating, or {RECLAIM_LIVE_GRACE_S:.0f}s past the lease"
    )
    return f"running for {running:.0f}s; {lease}"


@jobs_app.command("retry")
def jobs_retry(job_id: Annotated[str, typer.Argument(help="The failed job's UUID")]) -> None:
    """Put a failed job back in the queue, attempts reset (coalesces with a waiting job)."""

    async def main(settings: Settings) -> str:
        jid = actions.parse_job_id(job_id)
        async with open_services(settings) as services, services.store.session() as session:
            done = await actions.retry(session, jid, operator())
        if done.coalesced:
            waiting = done.queued_job_id
            return f"job {jid} coalesced into tenant {done.tenant_id}'s waiting job {waiting}"
        return f"job {jid} queued again"

    console.print(run_command(main), highlight=False, soft_wrap=True)


@jobs_app.command("cancel")
def jobs_cancel(job_id: Annotated[str, typer.Argument(help="The queued job's UUID")]) -> None:
    """Remove a queued job (a running or finished job is refused)."""

    async def main(settings: Settings) -> None:
        jid = actions.parse_job_id(job_id)
        async with open_services(settings) as services, services.store.session() as session:
            await actions.cancel(session, jid, operator())

    run_command(main)
    console.print(f"job {job_id} cancelled", highlight=False, soft_wrap=True)


def _set_paused(paused: bool) -> None:
    async def main(settings: Settings) -> bool:
        async with open_services(settings) as services, services.store.session() as session:
            return await actions.set_paused(session, paused, operator())

    changed = run_command(main)
    state = "paused" if paused else "resumed"
    console.print(
        f"queue {state}" if changed else f"queue was already {state}",
        highlight=False,
    )


@queue_app.command("pause")
def queue_pause() -> None:
    """Stop every worker claiming (within a second); enqueues still succeed."""
    _set_paused(True)


@queue_app.command("resume")
def queue_resume() -> None:
    """Let workers claim again; they wake at once."""
    _set_paused(False)


@queue_app.command("status")
def queue_status(as_json_flag: JsonOutput = False) -> None:
    """Whether the queue is paused, since when and by whom."""

    async def main(settings: Settings) -> None:
        async with open_services(settings) as services, services.store.session() as session:
            state = await session.console.queue_state()
        if as_json_flag:
            emit_json(as_json(state))
            return
        word = "paused" if state.paused else "running"
        by = f" (by {state.changed_by})" if state.changed_by else ""
        console.print(f"queue {word} since {table_time(state.changed_at)}{by}", highlight=False)

    run_command(main)


def workers(as_json_flag: JsonOutput = False) -> None:
    """Workers by heartbeat: live ones, then those gone quiet (shown as gone)."""

    async def main(settings: Settings) -> None:
        async with open_services(settings) as services, services.store.session() as session:
            rows = await session.console.workers(WORKER_STALE_S)
        if as_json_flag:
            emit_json({"workers": [as_json(w) for w in rows], "staleAfterSeconds": WORKER_STALE_S})
            return
        table = Table("id", "host", "pid", "state", "started", "last heartbeat", "jobs in hand")
        table.columns[0].no_wrap = True
        for w in rows:
            state = ("paused" if w.paused else "live") if w.alive else "gone"
            table.add_row(
                w.id,
                w.host,
                str(w.pid),
                state,
                table_time(w.started_at),
                table_time(w.last_heartbeat_at),
                str(w.jobs_in_hand) if w.alive else f"{w.jobs_in_hand} when last seen",
            )
        show(table)
        if not any(w.alive for w in rows):
            console.print(
                "no live worker: nothing is recomputed and the scheduled refresh does not run;"
                " start one with `aoer worker`",
                highlight=False,
            )

    run_command(main)


def register(app: typer.Typer) -> None:
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(queue_app, name="queue")
    app.command("workers")(workers)
