"""`aoer`: run the service, the worker and the operator's one-shot commands."""

import logging
import os
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from aoer import queue
from aoer.bootstrap import (
    ProcessKind,
    open_services,
    require_current_schema,
    resolve_database_url,
)
from aoer.bootstrap.watch import quiet_while_down
from aoer.bootstrap.worker import build_worker
from aoer.cli.alerts import alerts_app
from aoer.cli.console import register as register_console_commands
from aoer.cli.keys import keys_app
from aoer.cli.model import model_app
from aoer.cli.observations import observations_app
from aoer.cli.orgs import orgs_app, parse_org_id
from aoer.cli.runner import (
    EXIT_USAGE,
    JsonOutput,
    cli_actor,
    console,
    emit_json,
    errors,
    fail,
    json_time,
    print_fields,
    run_command,
    show,
    table_time,
)
from aoer.cli.runtime import install_stop_handlers, run_in_background, serve_worker_metrics
from aoer.cli.serve import register as register_api_commands
from aoer.cli.serve import run_up
from aoer.cli.sessions import sessions_app
from aoer.cli.signals import signals_app
from aoer.config import Settings
from aoer.constants import DEFAULT_PRIORITY, JOB_STATUSES, WORKER_STALE_S
from aoer.db.adoption import RetentionAges
from aoer.db.embedded import DATA_FOLDER, stop_embedded, stop_up, up_holder
from aoer.db.roles import AppRole, setup_app_role
from aoer.db.schema import migrate as run_migrations
from aoer.db.schema import plan as plan_migrations
from aoer.errors import Conflict, NotFound, UnknownTenant
from aoer.store import Session
from aoer.store.audit import AuditEntry
from aoer.types import Tenant
from aoer.wording import plural

app = typer.Typer(
    help="AOER Orchestrator",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)
tenants_app = typer.Typer(
    help="Register, list, rename, (de)activate and move dealerships", no_args_is_help=True
)
app.add_typer(tenants_app, name="tenants")
app.add_typer(signals_app, name="signals")
app.add_typer(observations_app, name="observations")
app.add_typer(model_app, name="model")
app.add_typer(sessions_app, name="sessions")
app.add_typer(orgs_app, name="orgs")
app.add_typer(keys_app, name="keys")
app.add_typer(alerts_app, name="alerts")
register_api_commands(app)
register_console_commands(app)


@app.command()
def migrate(
    app_role: Annotated[
        str | None,
        typer.Option(
            help="Also create or update this LOGIN role for `aoer serve` and `aoer worker`: "
            "a member of aoer_app, never superuser or owner (README: Production roles)",
            metavar="NAME",
        ),
    ] = None,
    app_password_env: Annotated[
        str | None,
        typer.Option(help="Set the app role's password from this environment variable"),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print what would be done (pending migrations, adopting an old system's "
            "database) and change nothing",
        ),
    ] = False,
) -> None:
    """Apply pending database migrations (idempotent; safe when run twice at once).

    A database of the old Node/Supabase system is adopted in place, every row kept
    (README: Coming from the Node/Supabase system)."""
    if app_password_env and not app_role:
        fail("--app-password-env needs --app-role NAME", EXIT_USAGE)
    password = None
    if app_password_env:
        password = os.environ.get(app_password_env)
        if not password:
            fail(f"environment variable {app_password_env} is not set or empty", EXIT_USAGE)

    async def main(settings: Settings) -> None:
        role = AppRole(app_role, password) if app_role else None
        url = await resolve_database_url(settings, allow_embedded=False)
        if dry_run:
            ages = RetentionAges(
                jobs=settings.retain_jobs_days,
                failures=settings.retain_failures_days,
                events=settings.retain_events_days,
            )
            steps = await plan_migrations(url, ages)
            for step in steps or ["schema is current: nothing to do"]:
                console.print(step, highlight=False, soft_wrap=True, markup=False)
            if role:
                console.print(f"then create or update the app role {role.name}", highlight=False)
            return
        applied = await run_migrations(url)
        console.print(f"{len(applied)} migrations applied" if applied else "schema is current")
        if role:
            changes = await setup_app_role(url, role)
            summary = "; ".join(changes) if changes else "up to date"
            console.print(f"app role {role.name}: {summary}", highlight=False, soft_wrap=True)

    run_command(main)


@app.command()
def worker(
    drain: Annotated[
        bool, typer.Option("--drain", help="Process until nothing is due, then exit 0")
    ] = False,
    concurrency: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Batches in flight at once (AOER_WORKER_CONCURRENCY)"),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            min=1, max=65535, help="Serve this worker's Prometheus metrics on this port (AOER_HOST)"
        ),
    ] = None,
) -> None:
    """Run a worker: claim batches, recompute, and run the cron scheduler."""

    async def main(settings: Settings) -> None:
        if concurrency is not None:
            settings.worker_concurrency = concurrency
        port = settings.worker_metrics_port if metrics_port is None else metrics_port
        metrics = serve_worker_metrics(settings.host, port) if port is not None else None
        async with open_services(settings, kind=ProcessKind.WORKER, wait=True) as services:
            await require_current_schema(services.store)
            await run_in_background(settings.worker_nice, services.store)
            runner = build_worker(
                services, drain=drain, on_batch=metrics.observe_batch if metrics else None
            )
            install_stop_handlers(runner.stop)
            async with quiet_while_down(services.store):
                await runner.run()

    run_command(main, service=True)


@app.command()
def up(
    demo: Annotated[bool, typer.Option("--demo", help="Add demo dealerships with signals")] = False,
    host: Annotated[str | None, typer.Option(help="Address to bind (AOER_HOST)")] = None,
    port: Annotated[
        int | None, typer.Option(min=0, max=65535, help="Port to bind (AOER_PORT)")
    ] = None,
) -> None:
    """API, worker and scheduler in one process (embedded PostgreSQL unless DATABASE_URL),
    listening on AOER_HOST:AOER_PORT (127.0.0.1:8000 unless set, or --host and --port)."""
    bind = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    run_command(lambda settings: run_up(settings.model_copy(update=bind), demo=demo), service=True)


@app.command()
def down(
    force: Annotated[
        bool,
        typer.Option("--force", help="Also stop the `aoer up` running with this AOER_HOME"),
    ] = False,
) -> None:
    """Stop the embedded PostgreSQL that `aoer up` leaves running (in AOER_HOME).

    Refused while an `aoer up` of the same AOER_HOME runs on it: stop that first (Ctrl-C),
    or give --force to stop both (`up` first, cleanly, then the database)."""

    async def main(settings: Settings) -> str:
        pgdata = settings.home / DATA_FOLDER
        lines = []
        up_pid = up_holder(settings.home)
        if up_pid is not None and not force:
            raise Conflict(
                f"`aoer up` (pid {up_pid or 'unknown'}) is running on the embedded PostgreSQL "
                f"in {pgdata}: stop it first (Ctrl-C), or run `aoer down --force` to stop both"
            )
        if up_pid is not None:
            await stop_up(settings.home)
            lines.append(f"stopped `aoer up` (pid {up_pid})")
        pid = await stop_embedded(settings.home)
        if pid is None:
            lines.append(f"no embedded PostgreSQL is running in {pgdata}")
        else:
            lines.append(f"stopped the embedded PostgreSQL in {pgdata} (pid {pid})")
        return "\n".join(lines)

    console.print(run_command(main), highlight=False, soft_wrap=True)


@app.command()
def cron(
    once: Annotated[bool, typer.Option("--once", help="Queue all active tenants now")] = False,
) -> None:
    """Queue every active tenant at low priority, as the cron tick does."""
    if not once:
        fail("the scheduler runs inside `aoer worker`; use `aoer cron --once`", EXIT_USAGE)

    async def main(settings: Settings) -> int:
        async with open_services(settings) as services, services.store.session() as session:
            queued = await queue.trigger_cron(session, settings.tick_chunk)
            await session.audit.record(
                AuditEntry(cli_actor(), "admin", "cron.trigger", details={"queued": queued})
            )
            await warn_if_paused(session)
            return queued

    console.print(f"queued {run_command(main)} tenants")


async def warn_if_paused(session: Session) -> None:
    """On stderr: jobs queued while the queue is paused wait until it is resumed."""
    if (await session.console.queue_state()).paused:
        errors.print(
            "note: the queue is paused: workers claim nothing until `aoer queue resume`",
            highlight=False,
        )


@app.command()
def enqueue(
    tenant_id: Annotated[str, typer.Argument(help="The tenant's UUID")],
    priority: Annotated[str, typer.Option(help="low, medium, high or urgent")] = DEFAULT_PRIORITY,
) -> None:
    """Queue one tenant for recompute (coalesces with a job already waiting)."""

    async def main(settings: Settings) -> None:
        async with open_services(settings) as services, services.store.session() as session:
            job = await queue.enqueue(session, tenant_id, priority)
            await warn_if_paused(session)
        state = "coalesced into" if job.coalesced else "queued as"
        console.print(f"tenant {job.tenant_id} {state} job {job.id} (priority {job.priority})")

    run_command(main)


@app.command()
def status(as_json: JsonOutput = False) -> None:
    """Queue depth by status and priority, oldest waiting job, throughput, and whether the
    queue is paused."""

    async def main(settings: Settings) -> None:
        async with open_services(settings) as services, services.store.session() as session:
            depth = await session.jobs.depth()
            rate = await session.jobs.throughput()
            state = await session.console.queue_state()
            workers = await session.console.workers(WORKER_STALE_S)
            next_due = await session.jobs.next_due_at()
            pending = await services.store.pending_migrations()
        live = [w for w in workers if w.alive]
        if as_json:
            jobs: dict[str, dict[str, int]] = {s: {} for s in JOB_STATUSES}
            oldest: dict[str, dict[str, float]] = {}
            for d in depth:
                jobs[d.status][d.priority] = d.jobs
                if d.oldest_age_s is not None:
                    oldest.setdefault(d.status, {})[d.priority] = round(d.oldest_age_s, 3)
            throughput = {"lastMinute": rate.last_minute, "lastHour": rate.last_hour}
            emit_json(
                {
                    "jobs": jobs,
                    "oldestAgeSeconds": oldest,
                    "throughput": throughput,
                    "paused": state.paused,
                    "liveWorkers": len(live),
                    "nextDueAt": json_time(next_due),
                    "pendingMigrations": pending,
                }
            )
            return
        table = Table(title="aoer_queue")
        table.add_column("status")
        for priority in ("urgent", "high", "medium", "low"):
            table.add_column(priority, justify="right")
        table.add_column("total", justify="right")
        table.add_column("oldest", justify="right")  # waiting since due / running for
        for status_name in ("queued", "processing", "completed", "failed"):
            rows = {d.priority: d for d in depth if d.status == status_name}
            ages = [d.oldest_age_s for d in rows.values() if d.oldest_age_s is not None]
            table.add_row(
                "pending" if status_name == "queued" else status_name,
                *(
                    str(rows[p].jobs) if p in rows else "0"
                    for p in ("urgent", "high", "medium", "low")
                ),
                str(sum(d.jobs for d in rows.values())),
                f"{max(ages):.0f}s" if ages else "-",
            )
        show(table)
        waiting = [d for d in depth if d.status == "queued"]
        if waiting and all(d.oldest_age_s is None for d in waiting) and next_due is not None:
            # None due: each waits out a retry's backoff (its "oldest" reads "-").
            due_in = max((next_due - datetime.now(UTC)).total_seconds(), 0)
            count = sum(d.jobs for d in waiting)
            console.print(
                f"{plural(count, 'pending job')} {'waits' if count == 1 else 'wait'} out a"
                " retry's backoff; the next is due"
                f" in {due_in:.0f}s",
                highlight=False,
            )
        console.print(
            f"throughput: {plural(rate.last_minute, 'job')} in the last minute, "
            f"{rate.last_hour} in the last hour"
        )
        if pending:
            console.print(
                Text(f"{plural(len(pending), 'migration')} pending", style="bold")
                + Text(f" ({pending[0]} first): workers refuse to start; run `aoer migrate`"),
                highlight=False,
            )
        if live:
            in_hand = sum(w.jobs_in_hand for w in live)
            console.print(f"workers: {len(live)} live, {in_hand} jobs in hand", highlight=False)
        else:
            console.print(
                Text("no live worker", style="bold")
                + Text(
                    ": nothing is recomputed and the scheduled refresh does not run (it runs"
                    " inside workers); start one with `aoer worker`"
                ),
                highlight=False,
            )
        if state.paused:
            by = f" by {state.changed_by}" if state.changed_by else ""
            console.print(
                Text("the queue is paused", style="bold")
                + Text(
                    f" (since {table_time(state.changed_at)}{by}): "
                    "workers claim nothing; `aoer queue resume` resumes it"
                ),
                highlight=False,
            )

    run_command(main)


@tenants_app.command("add")
def tenants_add(
    name: Annotated[
        str, typer.Argument(help="The dealership's name (unique, ignoring case and blanks)")
    ],
    tenant_id: Annotated[str | None, typer.Option("--id", help="Use this UUID")] = None,
    domain: Annotated[
        str | None,
        typer.Option(help="Web domain: a host name like www.dealer-one.co.uk (a URL's host)"),
    ] = None,
    city: Annotated[str | None, typer.Option(help="City")] = None,
    region: Annotated[str | None, typer.Option(help="Region")] = None,
    org: Annotated[
        str | None, typer.Option("--org", help="The organisation (UUID) that holds it")
    ] = None,
) -> None:
    """Register a dealership."""

    async def main(settings: Settings) -> None:
        tid = queue.parse_tenant_id(tenant_id) if tenant_id else None
        org_id = parse_org_id(org) if org else None
        async with (
            open_services(settings) as services,
            services.store.session() as session,
            session.transaction(),
        ):
            tenant = await session.tenants.create(
                name, tenant_id=tid, domain=domain, city=city, region=region, org_id=org_id
            )
            entry = AuditEntry(
                actor=cli_actor(),
                role="admin",
                action="tenant.create",
                org_id=org_id,
                tenant_id=tenant.id,
                target=tenant.name,
            )
            await session.audit.record(entry)
        print_fields(tenant.id, tenant.name)

    run_command(main)


@tenants_app.command("update")
def tenants_update(
    tenant: Annotated[str, typer.Argument(help="The dealership's UUID")],
    name: Annotated[str | None, typer.Option("--name", help="A new name (unique)")] = None,
    active: Annotated[
        bool | None,
        typer.Option(
            "--active/--inactive",
            help="--inactive: left out of the scheduled refresh and refused new jobs",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Rename a dealership or (de)activate it (audited as tenant.change); its data stays."""
    if name is None and active is None:
        raise typer.BadParameter("give --name, --active or --inactive: nothing to change")

    async def main(settings: Settings) -> None:
        tid = queue.parse_tenant_id(tenant)
        async with (
            open_services(settings) as services,
            services.store.session() as session,
            session.transaction(),
        ):
            changed = await queue.change_tenant(session, tid, name=name, active=active)
            if changed is None:
                raise UnknownTenant(f"unknown tenant {tid}")
            entry = changed.audit_entry(cli_actor(), "admin")
            if entry.details:
                await session.audit.record(entry)
        state = "active" if changed.is_active else "inactive"
        print_fields(changed.id, changed.new_name, state)
        if changed.cancelled_jobs:
            errors.print(
                "note: its waiting job was cancelled (an inactive dealership is not"
                " recomputed); made active again, it is queued at once",
                highlight=False,
                soft_wrap=True,
            )

    run_command(main)


@tenants_app.command("move")
def tenants_move(
    tenant: Annotated[str, typer.Argument(help="The dealership's UUID")],
    org: Annotated[
        str, typer.Option("--org", help="The organisation (UUID) to move it into; `none`: out")
    ],
) -> None:
    """Move a dealership into another organisation (or out of any, `--org none`)."""

    async def main(settings: Settings) -> None:
        tid = queue.parse_tenant_id(tenant)
        org_id = None if org.strip().lower() == "none" else parse_org_id(org)
        async with (
            open_services(settings) as services,
            services.store.session() as session,
            session.transaction(),
        ):
            moved = await session.tenants.move(tid, org_id)
            if moved is None:
                raise UnknownTenant(f"unknown tenant {tid}")
            for entry in moved.audit_entries(cli_actor(), "admin"):
                await session.audit.record(entry)
        revoked, deleted = len(moved.revoked_key_ids), len(moved.deleted_rule_ids)
        if moved.old_org_id == moved.new_org_id and not revoked and not deleted:
            where = moved.new_org_id or "no organisation"
            console.print(f"{tid} is already in {where}; nothing changed", highlight=False)
            return
        console.print(
            f"moved {tid} from {moved.old_org_id or 'no organisation'} "
            f"to {moved.new_org_id or 'no organisation'}"
            + (f"; revoked {revoked} API key(s) another organisation issued" if revoked else "")
            + (
                f"; deleted {deleted} alert rule(s) another organisation made for it"
                if deleted
                else ""
            ),
            highlight=False,
        )

    run_command(main)


@tenants_app.command("list")
def tenants_list(
    org: Annotated[
        str | None,
        typer.Option(
            "--org", help="Only this organisation's dealerships (UUID); `none`: those in none"
        ),
    ] = None,
    as_json: JsonOutput = False,
) -> None:
    """List dealerships with their organisation's name (full ids; `--json` for scripts)."""

    async def main(settings: Settings) -> None:
        unassigned = org is not None and org.strip().lower() == "none"
        org_id = parse_org_id(org) if org is not None and not unassigned else None
        async with open_services(settings) as services, services.store.session() as session:
            orgs = {o.id: o.name for o in await session.organizations.all()}
            if org_id is not None and org_id not in orgs:
                raise NotFound(f"unknown organisation {org_id}")
            tenants = await session.tenants.list(
                limit=1_000_000, org_id=org_id, unassigned=unassigned
            )
        if as_json:
            emit_json({"tenants": [tenant_json(t) for t in tenants]})
            return
        table = Table("id", "name", "domain", "city", "active", "organisation")
        table.columns[0].no_wrap = True  # an id is copied whole into other commands
        for t in tenants:
            active = "yes" if t.active else "no"
            org_name = orgs.get(t.org_id, str(t.org_id)) if t.org_id else ""
            table.add_row(str(t.id), t.name, t.domain or "", t.city or "", active, org_name)
        show(table)

    run_command(main)


def tenant_json(t: Tenant) -> dict[str, object]:
    """A tenant as `GET /api/tenants` shows it."""
    return {
        "id": str(t.id),
        "name": t.name,
        "domain": t.domain,
        "city": t.city,
        "region": t.region,
        "active": t.active,
        "createdAt": json_time(t.created_at),
        "updatedAt": json_time(t.updated_at),
        "orgId": str(t.org_id) if t.org_id else None,
    }


def main() -> None:
    logging.captureWarnings(True)
    app()
