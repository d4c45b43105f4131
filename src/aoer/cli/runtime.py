"""Process plumbing the commands share: stop signals and a worker's own metrics endpoint."""

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aoer.api.metrics import Metrics

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
