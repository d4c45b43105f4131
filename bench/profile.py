"""Where one batch's time goes: EXPLAIN (ANALYZE, BUFFERS) of the claim and of `complete_jobs`
for one batch, on a database left by `bench/run.py --keep-database`. Nothing stays written.

    python bench/profile.py [--batch-size 1000]   (uses AOER_BENCH_DATABASE_URL)
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
from aoer.store import QueuePolicy, Session
from common import DEFAULT_URL

MAX_LINE = 160


async def _explain(conn: Connection, name: str, params: dict[str, object]) -> None:
    cur = await conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query(name), params)  # type: ignore[operator]
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
                conn, "claim_jobs", {"worker_id": "profile", "limit": batch_size, "lease_s": 30.0}
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, default=1000)
    asyncio.run(main(parser.parse_args().batch_size))
