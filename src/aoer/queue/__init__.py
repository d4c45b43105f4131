"""The durable priority queue's semantics (DESIGN §4) over the store's `aoer_queue` SQL."""

from aoer.queue.batches import BatchOutcome, process_batch
from aoer.queue.coalescing import Enqueuer
from aoer.queue.jobs import (
    backoff_s,
    change_tenant,
    cron_chunk_size,
    enqueue,
    enqueue_many,
    fail,
    log_cron_queued,
    parse_priority,
    parse_tenant_id,
    queue_cron_chunk,
    raise_alerts,
    reclaim_expired,
    refuse_not_queued,
    trigger_cron,
)

__all__ = [
    "BatchOutcome",
    "Enqueuer",
    "backoff_s",
    "change_tenant",
    "cron_chunk_size",
    "enqueue",
    "enqueue_many",
    "fail",
    "log_cron_queued",
    "parse_priority",
    "parse_tenant_id",
    "process_batch",
    "queue_cron_chunk",
    "raise_alerts",
    "reclaim_expired",
    "refuse_not_queued",
    "trigger_cron",
]
