"""The composition root: each process kind builds its parts here, once, and hands them down.

`aoer up`, `aoer serve`, `aoer worker` and the one-shot commands all start from
`open_services` (settings → database URL → pool → store); `aoer.bootstrap.api.build_api`
adds the token service, cache, event hub, metrics and the app; `aoer.bootstrap.worker`
the worker with its scheduled ticks. Nothing here runs at import, and nothing downstream
reads these parts back out of the app: whoever needs one is given it. The API half is its
own module so one-shot commands start without loading FastAPI and uvicorn.
"""

import asyncio
import enum
import itertools
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace

from aoer.config import Settings
from aoer.db.embedded import embedded_pid, start_embedded
from aoer.db.pool import SessionLimits, connect, open_pool
from aoer.db.schema import migrate
from aoer.errors import AoerError, DatabaseError
from aoer.store import QueuePolicy, Store

logger = logging.getLogger(__name__)

CONNECT_RETRY_FIRST_S = 1.0  # first pause when the database is unreachable at start
CONNECT_RETRY_MAX_S = 30.0  # longest pause between start-up attempts


class ProcessKind(enum.Enum):
    """What a pool serves; each kind gets the server-side limits it can live with."""

    API = "api"
    WORKER = "worker"
    COMMAND = "command"


# API: no request waits on a worker's locks for more than 1 s (the lock wait is capped at
# half of that, leaving the rest for the request's own work), and a transaction left open
# by a hung API process is ended after 10 s. Workers: a hung worker's transactions end
# after 5 s idle (its jobs come back with its lease), lock waits are bounded, statements
# get minutes (a million-tenant tick). One-shot commands sit between.
LIMITS = {
    ProcessKind.API: SessionLimits(
        statement_timeout_ms=30_000,
        lock_timeout_ms=500,
        idle_in_transaction_ms=10_000,
        application_name="aoer api",
    ),
    ProcessKind.WORKER: SessionLimits(
        statement_timeout_ms=300_000,
        lock_timeout_ms=30_000,
        idle_in_transaction_ms=5_000,
        application_name="aoer worker",
    ),
    ProcessKind.COMMAND: SessionLimits(
        statement_timeout_ms=0,
        lock_timeout_ms=5_000,
        idle_in_transaction_ms=60_000,
        application_name="aoer command",
    ),
}


def session_limits(kind: ProcessKind, settings: Settings) -> SessionLimits:
    """`kind`'s limits; a worker's sessions also run at AOER_WORKER_NICE (background work)."""
    if kind is ProcessKind.WORKER:
        return replace(LIMITS[kind], backend_nice=settings.worker_nice)
    return LIMITS[kind]


@dataclass(frozen=True)
class Services:
    """What every process kind shares: its settings and the store over one pool."""

    settings: Settings
    database_url: str
    store: Store


def queue_policy(settings: Settings) -> QueuePolicy:
    return QueuePolicy(
        max_retries=settings.max_retries,
        lease_s=settings.lease_s,
        batch_size=settings.batch_size,
    )


async def resolve_database_url(settings: Settings, *, allow_embedded: bool) -> str:
    """DATABASE_URL when set; otherwise the embedded server in AOER_HOME: started by
    `aoer up` (`allow_embedded`), found by every other command while it runs."""
    if settings.database_url:
        return settings.database_url
    if allow_embedded or embedded_pid(settings.home) is not None:
        return await start_embedded(settings.home)  # reuses the running server
    raise AoerError(
        f"DATABASE_URL is not set and no embedded database runs in {settings.home.resolve()} "
        "(AOER_HOME): start one with `aoer up`, or set DATABASE_URL"
    )


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    kind: ProcessKind = ProcessKind.COMMAND,
    allow_embedded: bool = False,
    run_migrations: bool = False,
    wait: bool = False,
    database_url: str | None = None,
) -> AsyncIterator[Services]:
    """The database (embedded if allowed and no URL is set), migrated if asked, and the store
    over a pool sized for the worker's slots with `kind`'s limits; closed on exit.

    `wait` (long-running processes): an unreachable database is retried with backoff, each
    attempt logged, for up to AOER_CONNECT_TIMEOUT, then one clear error."""
    url = database_url or await resolve_database_url(settings, allow_embedded=allow_embedded)
    if run_migrations:
        for migration in await migrate(url):
            logger.info("applied migration %04d_%s", migration.version, migration.name)
    if wait:
        await wait_for_database(url, settings.connect_timeout_s)
    slots = settings.worker_concurrency + int(settings.urgent_lane)
    pool_size = max(settings.pool_size, slots * 2 + 2)
    async with open_pool(url, max_size=pool_size, limits=session_limits(kind, settings)) as pool:
        store = Store(pool, url, queue_policy(settings))
        try:
            yield Services(settings, url, store)
        finally:
            await store.flush()  # wake-ups asked for before exit (a CLI enqueue) are sent


async def require_current_schema(store: Store) -> None:
    """Refuse to run on a database whose schema is behind this version (not migrated yet, or
    an old system's database not adopted yet): every statement would fail on a missing
    table or column, a traceback a batch."""
    pending = await store.pending_migrations()
    if pending:
        count = f"{len(pending)} migrations are" if len(pending) > 1 else "1 migration is"
        raise AoerError(
            f"the database's schema is behind this version of aoer: {count} pending"
            f" ({pending[0]} first); run `aoer migrate` first"
        )


async def wait_for_database(url: str, timeout_s: float) -> None:
    """Return once PostgreSQL accepts a connection; until then retry with backoff, each
    attempt logged, for up to `timeout_s`, then raise one clear error."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    delay = CONNECT_RETRY_FIRST_S
    for attempt in itertools.count(1):
        try:
            conn = await connect(url)
        except DatabaseError as exc:
            if loop.time() + delay > deadline:
                raise AoerError(
                    f"PostgreSQL unreachable for {timeout_s:.0f}s (AOER_CONNECT_TIMEOUT), "
                    f"giving up: {exc}"
                ) from None
            logger.warning(
                "[AOER] database unreachable (attempt %d): %s; retrying in %.0fs",
                attempt,
                exc,
                delay,
                extra={"action": "connect_retry"},
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, CONNECT_RETRY_MAX_S)
            continue
        await conn.close()
        if attempt > 1:
            logger.info("[AOER] database reachable after %d attempts", attempt)
        return
