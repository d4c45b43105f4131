"""Process plumbing the commands share: stop signals and a worker's own metrics endpoint."""

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from aoer.db.pool import lower_priority

if TYPE_CHECKING:
    from aoer.api.metrics import Metrics
    from aoer.store import Store

logger = logging.getLogger(__name__)


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


async def run_in_background(nice: int, store: "Store") -> None:
    """A worker process is background work: this process at CPU niceness `nice` (never
    raised back: only root may), and a line saying where its database sessions run (they
    lower their own priority as they connect, src/aoer/db/pool.py)."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        current = os.nice(nice - current)
    async with store.pool.connection() as conn:
        backend = await lower_priority(conn, nice) if nice > 0 else None
    where = (
        f"its database sessions at {backend}"
        if backend is not None
        else "its database sessions at the server's normal priority"
        + ("" if nice == 0 else " (the server has no `prioritize` extension: migration 0022)")
    )
    logger.info(
        "[AOER] worker at CPU niceness %d (AOER_WORKER_NICE), %s",
        current,
        where,
        extra={"action": "priority", "nice": current, "backend_nice": backend},
    )
