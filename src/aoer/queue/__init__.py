"""The durable priority queue: the only code that runs queue SQL."""

from aoer.queue.batches import BatchOutcome, process_batch
from aoer.queue.jobs import (
    backoff_s,
    claim,
    enqueue,
    enqueue_all_active,
    enqueue_many,
    fail,
    next_due_at,
    parse_priority,
    parse_tenant_id,
    queue_depth,
    reclaim_expired,
    renew_leases,
    tenant_queue_status,
    throughput,
    trigger_cron,
)

__all__ = [
    "BatchOutcome",
    "backoff_s",
    "claim",
    "enqueue",
    "enqueue_all_active",
    "enqueue_many",
    "fail",
    "next_due_at",
    "parse_priority",
    "parse_tenant_id",
    "process_batch",
    "queue_depth",
    "reclaim_expired",
    "renew_leases",
    "tenant_queue_status",
    "throughput",
    "trigger_cron",
]
