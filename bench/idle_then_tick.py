"""Workers that have idled on an empty queue, then a fleet's jobs: how long the drain takes.

`bench/run.py` starts its workers just before each tick, so their statements are never
prepared while the queue is empty. Deployed workers run for days: every wake-up on an empty
queue claims nothing, and after a few of them psycopg prepares the claim and PostgreSQL may
keep a generic plan made for a table of no rows (issue 16's mixed row, issue 17). This
starts two `aoer worker` processes on `bench/api_bench.py`'s database, wakes them
IDLE_WAKEUPS times on an empty queue, queues TENANTS jobs in one statement (timed apart)
and times the drain from that statement's commit.

    .venv/bin/python bench/idle_then_tick.py [TENANTS]    # default 30,000
"""

import sys
import time

import psycopg

import api_bench

IDLE_WAKEUPS = 20


def main() -> None:
    api_bench.BACKLOG_TENANTS = int(sys.argv[1]) if len(sys.argv) > 1 else 30_000
    _, backlog = api_bench.seed(100)
    with (
        api_bench.draining("idle-then-tick", backlog) as queue_all,
        psycopg.connect(api_bench.database_url(), autocommit=True) as conn,
    ):
        for _ in range(IDLE_WAKEUPS):  # every slot claims from an empty queue
            conn.execute("SELECT pg_notify('aoer_queue', 'low')")
            time.sleep(0.2)
        time.sleep(1)
        started = time.monotonic()
        queue_all()
        queued = time.monotonic()
        while conn.execute(
            "SELECT EXISTS (SELECT 1 FROM aoer_queue WHERE status IN ('queued', 'processing'))"
        ).fetchone() != (False,):
            time.sleep(0.05)
        done = time.monotonic()
    print(f"queued {len(backlog):,} jobs in {queued - started:.2f} s (one statement)")
    print(f"drained them in {done - queued:.2f} s after it committed")


if __name__ == "__main__":
    main()
