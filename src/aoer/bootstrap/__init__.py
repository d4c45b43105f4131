"""The composition root: each process kind builds its parts here, once, and hands them down.

`aoer up`, `aoer serve`, `aoer worker` and the one-shot commands all start from
`open_services` (settings → database URL → pool → store); `aoer.bootstrap.api.build_api`
adds the token service, cache, event hub, metrics and the app; `aoer.bootstrap.worker`
the worker with its scheduled ticks. Nothing here runs at import, and nothing downstream
reads these parts back out of the app: whoever needs one is given it. The API half is its
own module so one-shot commands start without loading FastAPI and uvicorn.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aoer.config import Settings
from aoer.db.embedded import start_embedded
from aoer.db.pool import open_pool
from aoer.db.schema import migrate
from aoer.errors import AoerError
from aoer.store import QueuePolicy, Store

logger = logging.getLogger(__name__)


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
    """DATABASE_URL when set; otherwise the embedded server in AOER_HOME (for `aoer up`)."""
    if settings.database_url:
        return settings.database_url
    if not allow_embedded:
        raise AoerError("DATABASE_URL is not set (only `aoer up` starts an embedded database)")
    return await start_embedded(settings.home)


@asynccontextmanager
async def open_services(
    settings: Settings, *, allow_embedded: bool = False, run_migrations: bool = False
) -> AsyncIterator[Services]:
    """The database (embedded if allowed and no URL is set), migrated if asked, and the store
    over a pool sized for the worker's slots; closed on exit."""
    url = await resolve_database_url(settings, allow_embedded=allow_embedded)
    if run_migrations:
        for migration in await migrate(url):
            logger.info("applied migration %04d_%s", migration.version, migration.name)
    pool_size = max(settings.pool_size, settings.worker_concurrency * 2 + 2)
    async with open_pool(url, max_size=pool_size) as pool:
        yield Services(settings, url, Store(pool, url, queue_policy(settings)))
