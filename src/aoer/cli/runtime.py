"""The composition root of every process: settings → database → pool → worker and scheduler."""

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from aoer import queue
from aoer.config import Settings
from aoer.constants import MODEL_TICK, RECOMPUTE_TICK, RETENTION_CRON, RETENTION_TICK
from aoer.db.embedded import start_embedded
from aoer.db.pool import Connection, Pool, open_pool
from aoer.db.schema import migrate
from aoer.errors import AoerError
from aoer.queue.retention import RetentionAges, purge
from aoer.scoring import model
from aoer.types import JsonObject
from aoer.worker.scheduler import ScheduledJob

if TYPE_CHECKING:
    from aoer.api.metrics import Metrics

logger = logging.getLogger(__name__)


async def resolve_database_url(settings: Settings, *, allow_embedded: bool) -> str:
    """DATABASE_URL when set; otherwise the embedded server in AOER_HOME (for `aoer up`)."""
    if settings.database_url:
        return settings.database_url
    if not allow_embedded:
        raise AoerError("DATABASE_URL is not set (only `aoer up` starts an embedded database)")
    return await start_embedded(settings.home)


@asynccontextmanager
async def database(
    settings: Settings, *, allow_embedded: bool = False, run_migrations: bool = False
) -> AsyncIterator[tuple[str, Pool]]:
    url = await resolve_database_url(settings, allow_embedded=allow_embedded)
    if run_migrations:
        for migration in await migrate(url):
            logger.info("applied migration %04d_%s", migration.version, migration.name)
    pool_size = max(settings.pool_size, settings.worker_concurrency * 2 + 2)
    async with open_pool(url, max_size=pool_size) as pool:
        yield url, pool


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    """The ticks every worker runs: the fleet recompute, the daily retention, the weekly
    model training."""

    async def recompute(conn: Connection) -> JsonObject:
        return {"queued": await queue.trigger_cron(conn, max_retries=settings.max_retries)}

    async def retention(conn: Connection) -> JsonObject:
        ages = RetentionAges(
            settings.retain_jobs_days, settings.retain_failures_days, settings.retain_events_days
        )
        return {"deleted": await purge(conn, ages)}

    async def train_model(conn: Connection) -> JsonObject:
        run = await model.train_on_tick(conn, settings, MODEL_TICK)
        return {"decision": run.evaluation.decision, "auditId": run.audit_id}

    if not settings.run_cron:
        return []
    jobs = [
        ScheduledJob(RECOMPUTE_TICK, settings.cron, recompute),
        # Retention deletes in batches of its own short transactions, not in one long one.
        ScheduledJob(RETENTION_TICK, RETENTION_CRON, retention, in_tick_transaction=False),
    ]
    if settings.model_schedule:
        jobs.append(ScheduledJob(MODEL_TICK, settings.model_cron, train_model))
    return jobs


def install_stop_handlers(stop: Callable[[], None]) -> None:
    """SIGTERM/SIGINT: stop claiming, finish the batch in hand, exit 0."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)


def serve_worker_metrics(host: str, port: int) -> "Metrics":
    """This worker's job, batch and latency metrics on http://host:port/metrics (Prometheus
    scrapes every worker; queue depth stays with the API, which reads it fleet-wide)."""
    from prometheus_client import start_http_server

    from aoer.api.metrics import Metrics

    metrics = Metrics(queue_gauges=False)
    start_http_server(port, addr=host, registry=metrics.registry)
    logger.info("[AOER] worker metrics on http://%s:%d/metrics", host, port)
    return metrics
