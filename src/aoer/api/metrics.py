"""Prometheus metrics: HTTP traffic, queue depth from the database, and recompute batches.

Every app owns its registry (several apps can live in one test process). Queue depth is read
from PostgreSQL by the API's `MetricsSnapshot` (at most once per refresh interval, however
many clients scrape), so it covers the whole fleet; batch, job-outcome and latency
metrics are observed by the process that runs the worker (`aoer up` passes `observe_batch` to
its Worker).
"""

import math
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aoer.constants import JOB_STATUSES, PRIORITIES
from aoer.queue.batches import BatchOutcome
from aoer.types import QueueDepth

KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
HTTP_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
BATCH_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000)
LATENCY_BUCKETS_S = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21_600)


class Metrics:
    """One process's metrics. `queue_gauges=False` (a worker's own endpoint) leaves out the
    fleet-wide queue gauges, which only processes that refresh them at scrape time export."""

    def __init__(self, *, queue_gauges: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        fleet = r if queue_gauges else None
        self.http_requests = Counter(
            "aoer_http_requests",
            "HTTP requests by method, route template and status code",
            ["method", "route", "status"],
            registry=r,
        )
        self.http_duration = Histogram(
            "aoer_http_request_duration_seconds",
            "HTTP request latency by method and route template",
            ["method", "route"],
            buckets=HTTP_BUCKETS_S,
            registry=r,
        )
        self.jobs = Counter(
            "aoer_jobs",
            "Recompute jobs settled by this process's worker, by outcome",
            ["outcome"],
            registry=r,
        )
        for outcome in ("completed", "retried", "failed"):
            self.jobs.labels(outcome)
        self.batch_duration = Histogram(
            "aoer_recompute_batch_duration_seconds",
            "Time to recompute and commit one claimed batch",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "aoer_recompute_batch_size",
            "Jobs per claimed batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=r,
        )
        self.job_latency = Histogram(
            "aoer_job_latency_seconds",
            "From enqueue to completed recompute, per job",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.queue_jobs = Gauge(
            "aoer_queue_jobs",
            "Jobs in aoer_queue by status and priority (whole fleet, from the snapshot)",
            ["status", "priority"],
            registry=fleet,
        )
        self.queue_oldest = Gauge(
            "aoer_queue_oldest_job_age_seconds",
            "Queued: seconds the longest-waiting due job has waited since it came due (0 when"
            " none is due); processing: seconds the longest-running job has run",
            ["status", "priority"],
            registry=fleet,
        )
        self.database_up = Gauge(
            "aoer_database_up", "1 when the last snapshot could read the queue", registry=fleet
        )
        # What a pager needs when nothing is processed: the scheduler and the alert delivery
        # run inside workers, so with none alive the product itself raises nothing.
        self.live_workers = Gauge(
            "aoer_workers_live",
            "Workers whose heartbeat is fresh (0: nothing is recomputed, no tick fires)",
            registry=fleet,
        )
        self.queue_paused = Gauge(
            "aoer_queue_paused",
            "1 while the queue is paused (workers claim nothing)",
            registry=fleet,
        )
        self.snapshot_age = Gauge(
            "aoer_metrics_snapshot_age_seconds",
            "Age of the queue gauges: since their last successful read (+Inf before the first)",
            registry=fleet,
        )
        self.snapshot_age.set(math.inf)

    def observe_batch(self, outcome: BatchOutcome) -> None:
        """Record one processed batch (the Worker's `on_batch` hook)."""
        settled = len(outcome.completed) + len(outcome.failed)
        if settled:
            self.batch_size.observe(settled)
            self.batch_duration.observe(outcome.elapsed_ms / 1000)
        for done in outcome.completed:
            self.jobs.labels("completed").inc()
            self.job_latency.observe(done.latency_ms / 1000)
        for attempt in outcome.failed:
            self.jobs.labels("retried" if attempt.status == "queued" else "failed").inc()

    def set_queue_depth(self, depth: list[QueueDepth]) -> None:
        found = {(d.status, d.priority): d for d in depth}
        for status in JOB_STATUSES:
            for priority in PRIORITIES:
                row = found.get((status, priority))
                self.queue_jobs.labels(status, priority).set(row.jobs if row else 0)
                if status in ("queued", "processing"):
                    age = row.oldest_age_s if row and row.oldest_age_s is not None else 0
                    self.queue_oldest.labels(status, priority).set(age)

    def set_workers(self, live: int, paused: bool) -> None:
        self.live_workers.set(live)
        self.queue_paused.set(int(paused))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class HttpMetricsMiddleware:
    """Counts and times every request by its route template (never the raw path)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_record_status)
        finally:
            route = scope.get("route")
            template = str(getattr(route, "path", "unmatched"))
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "OTHER"
            self.metrics.http_requests.labels(method, template, str(status)).inc()
            self.metrics.http_duration.labels(method, template).observe(
                time.perf_counter() - started
            )
