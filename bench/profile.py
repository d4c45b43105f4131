"""Where one batch's time goes, on a database left by `bench/run.py --keep-database`.

    python bench/profile.py [--batch-size 1000]   (uses AOER_BENCH_DATABASE_URL)
    python bench/profile.py --steps 40 [--empty]

By default: EXPLAIN (ANALYZE, BUFFERS) of the claim and of `complete_jobs` for one batch,
rolled back, so nothing stays written. The tick runs in the same transaction, so both
updates also fire the queue's foreign-key check (a row inserted by the updating transaction
is always checked): that trigger's line is an artefact, not a worker's cost.

`--steps N` instead commits, as a worker does: the tick, then N batches one after another on
one connection, and prints the milliseconds per batch of each step (claim, complete_jobs,
alerts, the summaries' NOTIFY, commit). `--empty` first empties the summaries and events, as
the harness does before each method (every recompute is then a tenant's first). It leaves
jobs and summaries behind; the harness resets them before each method.
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aoer.constants import RECOMPUTE_EVENT
from aoer.db.pool import Connection, connect
from aoer.db.queries import query
from aoer.queue.jobs import raise_alerts
from aoer.store import QueuePolicy, Session
from common import DEFAULT_URL

MAX_LINE = 160


async def _explain(conn: Connection, name: str, params: dict[str, object]) -> None:
    cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query(name), params)
    print(f"--- {name}")
    for row in await cur.fetchall():
        line = str(next(iter(row.values())))
        # The job-id array is spelled out in filters; keep the plan readable.
        print(line if len(line) <= MAX_LINE else line[:MAX_LINE] + " …")


async def main(batch_size: int) -> None:
    url = os.environ.get("AOER_BENCH_DATABASE_URL", DEFAULT_URL)
    conn = await connect(url)
    session = Session(conn, QueuePolicy(batch_size=batch_size))
    try:
        async with conn.transaction(force_rollback=True):
            await conn.execute("TRUNCATE aoer_queue, aoer_failures CASCADE")
            await conn.execute(query("enqueue_all_active"), {"priority": "low", "max_retries": 3})
            await conn.execute("ANALYZE aoer_queue")
            await _explain(
                conn,
                "claim_jobs",
                {
                    "worker_id": "profile",
                    "limit": batch_size,
                    "lease_s": 30.0,
                    "min_priority": "low",
                },
            )
            jobs = await session.jobs.claim("profile")
            held = {"worker_id": "profile", "job_ids": [j.id for j in jobs]}
            await _explain(conn, "complete_jobs", {**held, "event_type": RECOMPUTE_EVENT})
            jobs = await session.jobs.claim("profile")
            started = time.perf_counter()
            await session.jobs.complete("profile", [j.id for j in jobs])
            print(f"--- complete_jobs again, without EXPLAIN: {time.perf_counter() - started:.3f}s")
    finally:
        await conn.close()


async def steps(batch_size: int, batches: int, empty: bool) -> None:
    url = os.environ.get("AOER_BENCH_DATABASE_URL", DEFAULT_URL)
    conn = await connect(url)
    session = Session(conn, QueuePolicy(batch_size=batch_size))
    spent: dict[str, float] = {}
    try:
        await conn.execute("TRUNCATE aoer_queue, aoer_failures CASCADE")
        if empty:
            await conn.execute("TRUNCATE aoer_summary, metrics_events")
        started = time.perf_counter()
        await session.jobs.enqueue_all_active("low")
        print(f"tick (one statement): {time.perf_counter() - started:.3f} s")
        for _ in range(batches):
            mark = time.perf_counter()

            def step(name: str) -> None:
                nonlocal mark
                now = time.perf_counter()
                spent[name] = spent.get(name, 0.0) + now - mark
                mark = now

            jobs = await session.jobs.claim("profile")
            step("claim")
            async with conn.transaction():
                done = await session.jobs.complete("profile", [j.id for j in jobs])
                step("complete_jobs")
                await raise_alerts(session, done, [])
                step("alerts")
                await session.jobs.announce_summaries([j.tenant_id for j in done])
                step("notify")
            step("commit")
    finally:
        await conn.close()
    for name, seconds in spent.items():
        print(f"{name:14} {seconds / batches * 1000:7.1f} ms / batch")
    print(f"{'total':14} {sum(spent.values()) / batches * 1000:7.1f} ms / batch")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=0, help="time N committed batches")
    parser.add_argument("--empty", action="store_true", help="empty summaries first")
    args = parser.parse_args()
    if args.steps:
        asyncio.run(steps(args.batch_size, args.steps, args.empty))
    else:
        asyncio.run(main(args.batch_size))
