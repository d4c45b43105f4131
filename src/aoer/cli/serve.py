"""`aoer serve` (the API alone), `aoer token` (mint a JWT) and `run_up` (API + worker + cron).

The API stack is imported inside the commands that need it, so `aoer enqueue`, `aoer status`
and the other one-shot commands start without loading FastAPI and uvicorn (~0.4 s).
"""

import asyncio
import logging
import re
import sys
from contextlib import ExitStack
from datetime import timedelta
from typing import Annotated
from uuid import UUID

import typer

from aoer import queue
from aoer.bootstrap import ProcessKind, open_services
from aoer.bootstrap.watch import DatabaseWatch, QuietWhileDown, quiet_while_down
from aoer.bootstrap.worker import build_worker
from aoer.cli.orgs import parse_org_id
from aoer.cli.runner import EXIT_USAGE, cli_actor, console, fail, run_command
from aoer.cli.runtime import install_stop_handlers
from aoer.config import Settings, load_settings
from aoer.db.embedded import announce_up_url, up_lock
from aoer.db.pool import redacted
from aoer.errors import AoerError, DatabaseError
from aoer.log import setup_logging
from aoer.scoring.demo import DemoOrg, load_demo, load_demo_orgs
from aoer.store.audit import AuditEntry

logger = logging.getLogger(__name__)

_TTL = re.compile(r"^(\d+)([smhd]?)$")
_TTL_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}
MAX_TTL = timedelta(days=3650)
BANNER_SETTLE_S = 5.0  # the longest `aoer up` holds its banner back for the worker's start
STOP_WITHOUT_DATABASE_S = 2.0  # how long `aoer up` waits on work in hand once its database is gone


def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (AOER_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (AOER_PORT)")] = None,
    reuse_port: Annotated[
        bool,
        typer.Option(
            "--reuse-port", help="Share the port with other `aoer serve` processes (one per core)"
        ),
    ] = False,
) -> None:
    """Run the HTTP API alone (run `aoer migrate` first; workers run separately)."""

    async def main(settings: Settings) -> None:
        from aoer.api.secret_files import with_secrets
        from aoer.bootstrap.api import build_api

        settings = with_secrets(settings, create=True)
        async with (
            open_services(settings, kind=ProcessKind.API, wait=True) as services,
            build_api(services) as api,
        ):
            bind = host or settings.host
            server = api.server(
                bind, settings.port if port is None else port, reuse_port=reuse_port
            )
            install_stop_handlers(server.stop)
            bound = await server.start()
            logger.info("[AOER] API listening on http://%s", address(bind, bound))
            async with quiet_while_down(services.store):
                await server.wait()

    run_command(main, service=True)


def address(host: str, port: int) -> str:
    """Where a browser on this machine reaches a server bound to `host`."""
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def run_up(settings: Settings, *, demo: bool) -> None:
    """`aoer up`: API, worker and scheduler in one process and one event loop."""
    from aoer.api.secret_files import with_secrets

    settings = with_secrets(settings, create=True)
    with ExitStack() as held:
        if not settings.database_url:
            # `aoer down` of this AOER_HOME refuses while this is held (DESIGN §16).
            held.enter_context(up_lock(settings.home))
        await _run_up(settings, demo=demo)


async def _run_up(settings: Settings, *, demo: bool) -> None:
    from aoer.api.auth import LOGIN_PURPOSE, LOGIN_TOKEN_TTL
    from aoer.bootstrap.api import build_api

    async with (
        open_services(
            settings, kind=ProcessKind.API, allow_embedded=True, run_migrations=True
        ) as services,
        # The worker half gets a pool of its own, with a worker's server-side limits.
        open_services(
            settings, kind=ProcessKind.WORKER, database_url=services.database_url
        ) as worker_services,
        build_api(services) as api,
    ):
        demo_orgs: list[DemoOrg] = []
        if demo:
            async with services.store.session() as session:
                ids = await load_demo(session)
                demo_orgs = await load_demo_orgs(session, ids)
                await queue.enqueue_many(session, ids, "high")
            owners = " and ".join(f"{o.name} ({o.dealerships})" for o in demo_orgs)
            console.print(f"demo: {len(ids)} dealerships with 90 days of signals, held by {owners}")
        server = api.server(settings.host, settings.port)
        runner = build_worker(worker_services, on_batch=api.context.metrics.observe_batch)

        def stop() -> None:
            runner.stop()
            server.stop()

        watch = DatabaseWatch(
            services.store,
            embedded_home=None if settings.database_url else settings.home,
            grace_s=settings.database_lost_s,
            on_lost=stop,
        )

        install_stop_handlers(stop)
        port = await server.start()
        tokens = api.context.tokens
        where = address(settings.host, port)
        if not settings.database_url:  # `aoer sessions link` hands out links to here
            announce_up_url(settings.home, f"http://{where}")
        links = [
            (
                f"as {o.name} (its {o.dealerships} dealerships only)",
                tokens.mint("org", org_id=o.id, ttl=LOGIN_TOKEN_TTL, subject="aoer-up",
                            purpose=LOGIN_PURPOSE),
            )
            for o in demo_orgs[:1]
        ]  # fmt: skip
        admin_link = tokens.mint(
            "admin", ttl=LOGIN_TOKEN_TTL, subject="aoer-up", purpose=LOGIN_PURPOSE
        )
        links.append(("as administrator (every dealership)", admin_link))  # the last line
        # The worker starts first and the banner waits (a few seconds at most) until it has
        # nothing due: its start-up lines (ticks, the demo's recomputes) come before the
        # banner, and the login link is the last line on the screen (DESIGN §16).
        worker_task = asyncio.create_task(runner.run(), name="aoer-worker")
        settled = asyncio.ensure_future(runner.idle.wait())
        await asyncio.wait({settled, worker_task}, timeout=BANNER_SETTLE_S)
        settled.cancel()
        if demo and settled.done():
            # The peers' medians the advice compares against are refreshed every 15 minutes;
            # the first tick ran before the demo's first scores, which left every summary
            # without advice until the next. Refreshed once now that they are in (best
            # effort: the next tick does it anyway).
            try:
                async with services.store.session() as session:
                    await session.scores.refresh_medians()
            except DatabaseError as exc:
                logger.warning("[AOER] the peers' medians wait for the next refresh: %s", exc)
        # print, not log: the links are credentials and must not land in shipped log files;
        # rich would wrap the long URL, so plain stdout it is.
        print(
            f"AOER is up: API on http://{where}\n"
            f"database: {redacted(services.database_url)}\n"
            f"  (other aoer commands find it by themselves with AOER_HOME={settings.home})\n"
            f"More tokens: aoer token --role admin (secrets in {settings.home})\n"
            f"Open the dashboard (each link works once, for 15 minutes):\n"
            + "\n".join(
                (f"  {label}:\n" if len(links) > 1 else "")
                + f"  http://{where}/login?token={token}"
                for label, token in links
            ),
            flush=True,
        )
        watch.start().add_done_callback(_watch_ended)
        server_task = server.task
        assert server_task is not None
        quiet = QuietWhileDown(watch)
        handlers = logging.getLogger().handlers
        for handler in handlers:
            handler.addFilter(quiet)
        try:
            await asyncio.wait({worker_task, server_task}, return_when=asyncio.FIRST_COMPLETED)
            stop()  # one half ended (a signal, a failure, the database lost): end the other
            # Without a database nothing in hand can be finished: do not wait long for it.
            tasks = {worker_task, server_task}
            _, pending = await asyncio.wait(tasks, timeout=STOP_WITHOUT_DATABASE_S)
            while pending and not watch.down:
                _, pending = await asyncio.wait(pending, timeout=STOP_WITHOUT_DATABASE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=bool(pending))
        finally:
            await watch.stop()
            for handler in handlers:
                handler.removeFilter(quiet)
    if watch.lost:
        raise AoerError(watch.lost)


def _watch_ended(task: "asyncio.Task[None]") -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("[AOER] the database watch failed: %r", task.exception())


def _parse_ttl(text: str) -> timedelta:
    match = _TTL.match(text.strip().lower())
    if not match:
        raise AoerError(f"invalid --ttl {text!r}: use seconds or a number with s, m, h or d")
    ttl = timedelta(seconds=int(match[1]) * _TTL_UNITS[match[2]])
    if not timedelta(0) < ttl <= MAX_TTL:
        raise AoerError(f"invalid --ttl {text!r}: must be positive and at most 3650d")
    return ttl


def token(
    role: Annotated[
        str | None, typer.Option(help="admin or service (tenant tokens: use --tenant)")
    ] = None,
    tenant: Annotated[
        str | None, typer.Option(help="Mint a tenant token for this tenant's UUID")
    ] = None,
    org: Annotated[
        str | None, typer.Option(help="Mint an organisation token for this organisation's UUID")
    ] = None,
    ttl: Annotated[str, typer.Option(help="Lifetime: seconds, or e.g. 15m, 12h, 30d")] = "1d",
    subject: Annotated[str | None, typer.Option(help="The token's `sub` claim")] = None,
) -> None:
    """Mint a bearer token (HS256, AOER_JWT_SECRET or the one `aoer up` generated); the token
    is the last line printed. Every mint is recorded in the audit log."""
    from aoer.api.auth import TokenService
    from aoer.api.secret_files import with_secrets

    try:
        settings = with_secrets(load_settings(), create=False)
        setup_logging(settings.log_format, stream=sys.stderr)
        if tenant is not None and org is not None:
            raise AoerError("give --tenant or --org, not both")
        if tenant is None and org is None and role not in ("admin", "service"):
            raise AoerError("give --role admin, --role service, --org ORG_ID or --tenant TENANT_ID")
        if tenant is not None and role not in (None, "tenant"):
            raise AoerError("--tenant mints a tenant token: leave out --role")
        if org is not None and role not in (None, "org"):
            raise AoerError("--org mints an organisation token: leave out --role")
        tenant_id = queue.parse_tenant_id(tenant) if tenant is not None else None
        org_id = parse_org_id(org) if org is not None else None
        chosen = "tenant" if tenant_id else "org" if org_id else str(role)
        if not settings.jwt_secret:
            raise AoerError(
                f"no AOER_JWT_SECRET and no {settings.home}/jwt_secret: "
                "set AOER_JWT_SECRET or start `aoer up`/`aoer serve` once"
            )
        lifetime = _parse_ttl(ttl)
        tokens = TokenService(settings.jwt_secret)
        minted = tokens.mint(
            chosen, tenant_id=tenant_id, org_id=org_id, ttl=lifetime, subject=subject
        )
        principal = tokens.verify(minted)
        record = record_mint(settings, principal.subject, chosen, tenant_id, org_id, ttl)
        if tenant_id or org_id:
            asyncio.run(record)  # the database must confirm the tenant or organisation
        else:
            # An admin or service token needs only the secret (a deployment mints one before
            # its first migrate): the audit row is written when the database can take it.
            try:
                asyncio.run(record)
            except AoerError as exc:
                logger.warning("token.mint not recorded in the audit log: %s", exc)
    except ValueError as exc:
        fail(f"invalid configuration: {exc}", EXIT_USAGE)
    except AoerError as exc:
        fail(str(exc))
    whose = (
        f" for tenant {tenant_id}" if tenant_id else f" for organisation {org_id}" if org_id else ""
    )
    logger.info(
        "minted %s %s token%s, valid for %s",
        "an" if chosen[0] in "aeiou" else "a",
        chosen,
        whose,
        duration_words(lifetime),
        extra={"action": "token_mint"},
    )
    print(minted, flush=True)


async def record_mint(
    settings: Settings,
    subject: str,
    role: str,
    tenant_id: UUID | None,
    org_id: UUID | None,
    ttl: str,
    purpose: str | None = None,
) -> None:
    """Refuse a token for an unknown tenant or organisation; audit the mint (token.mint,
    with the token's purpose when it has one: `login` for a one-time login link)."""
    async with (
        open_services(settings) as services,
        services.store.session() as session,
        session.transaction(),
    ):
        if tenant_id is not None and not await session.tenants.exists(tenant_id):
            raise AoerError(f"unknown tenant {tenant_id}: no token minted")
        if org_id is not None and await session.organizations.get(org_id) is None:
            raise AoerError(f"unknown organisation {org_id}: no token minted")
        owner = await session.organizations.of_tenant(tenant_id) if tenant_id else None
        await session.audit.record(
            AuditEntry(
                actor=cli_actor(),
                role="admin",
                action="token.mint",
                org_id=org_id or (owner.org_id if owner else None),
                tenant_id=tenant_id,
                target=subject,
                details={"role": role, "ttl": ttl} | ({"purpose": purpose} if purpose else {}),
            )
        )


def duration_words(span: timedelta) -> str:
    """`24 hours`, `15 minutes`, `30 days`: a lifetime as a person says it."""
    seconds = int(span.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0 and (unit != "day" or seconds > 86_400):
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def register(app: typer.Typer) -> None:
    """Add `serve` and `token` to the `aoer` command line."""
    app.command()(serve)
    app.command()(token)
