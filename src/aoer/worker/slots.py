"""How many batch slots a worker keeps busy.

Each slot's batch runs on a database backend, and a fleet refresh is CPU-bound in the
database. Batches in flight beyond the database host's cores preempt each other: on one
two-core host, two workers with two slots each refreshed 100,000 tenants in 1.29-1.31 times
the floor's time and with one slot each in 1.22-1.23 times; on a faster one the two did the
same (bench/README.md, "Batch slots against cores" and the section after it). A single
worker needs both of its slots. So when `AOER_WORKER_CONCURRENCY` is not set and the
database runs on the worker's own host, whose cores the worker can count, the live workers
share those cores: each keeps `cores // live workers` slots busy, at least one and at most
the default. Set explicitly, or with the database elsewhere (its cores unknown), the setting
is used as it is.
"""

import os


def host_cores() -> int:
    """The cores this process may run on (its affinity, which a container or `taskset` may
    narrow), else the machine's."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def batch_slots(
    configured: int, *, explicit: bool, database_here: bool, cores: int, live_workers: int
) -> int:
    """The regular slots a worker keeps busy, of the `configured` it runs."""
    if explicit or not database_here:
        return configured
    return max(1, min(configured, cores // max(live_workers, 1)))
