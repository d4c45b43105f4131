"""The durable priority queue's semantics (DESIGN §4) over the store's `aoer_queue` SQL."""

from aoer.queue.batches import BatchOutcome, process_batch
from aoer.queue.jobs import (
    backoff_s,
    enqueue,
    enqueue_many,
    fail,
    parse_priority,
    parse_tenant_id,
    raise_alerts,
    reclaim_expired,
    trigger_cron,
)

__all__ = [
    "BatchOutcome",
    "backoff_s",
    "enqueue",
    "enqueue_many",
    "fail",
    "parse_priority",
    "parse_tenant_id",
    "process_batch",
    "raise_alerts",
    "reclaim_expired",
    "trigger_cron",
]
