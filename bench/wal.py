"""What a refresh writes to the WAL, by record type and relation, against what the floor writes.

    python bench/wal.py --tenants 100000 [--processes 2] [--top 25]

On a database kept by `bench/run.py --keep-database` with as many tenants: the floor (one
plan, `--floor-plan`, default the scan) and one refresh by running `aoer worker` processes,
each from the harness's reset state, exactly as `bench/run.py` runs them. Each one's WAL is
read between the LSNs before and after it with `pg_walinspect` (created in the benchmark's
database; the harness connects as a superuser). What the harness itself writes after a
refresh, its copy of the summaries into `bench_results`, is left out. Prints, for each
method, its records, bytes and full-page images in all and per tenant, then its records by
type and relation, largest first ("Row locks a job, counted" in bench/README.md).
"""

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench_run
from aoer.db.pool import connect
from common import DEFAULT_URL, reset, scalar
from floor import FLOOR_PLANS, run_floor

HARNESS_RELATIONS = ("bench_results", "bench_results_pkey")

# The records between two LSNs that write a block of this database, by the relation of their
# first block (the WAL is the server's: other databases' records, and those that write no
# block, such as commits, are left out), the harness's own relations left out too.
RECORDS = """
WITH r AS (
    SELECT w.resource_manager || '/' || w.record_type AS record,
           (regexp_match(w.block_ref, 'rel \\d+/(\\d+)/(\\d+)'))::oid[] AS rel,
           w.record_length, w.fpi_length
    FROM pg_get_wal_records_info(%(start)s::pg_lsn, %(end)s::pg_lsn) w
)
SELECT r.record, coalesce(c.relname::text, r.rel[2]::text) AS relation, count(*) AS records,
       sum(r.record_length) AS bytes, sum(r.fpi_length) AS fpi_bytes
FROM r
LEFT JOIN pg_class c ON c.relfilenode = r.rel[2]
WHERE r.rel[1] = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND (c.relname IS NULL OR c.relname::text <> ALL (%(harness)s))
GROUP BY 1, 2
ORDER BY sum(r.record_length) DESC
"""


async def lsn(url: str, flushed: bool = False) -> str:
    """Where the WAL is written to now (or, `flushed`, flushed to: as far as it can be read)."""
    which = "flush" if flushed else "insert"
    conn = await connect(url)
    try:
        return str(await scalar(conn, f"SELECT pg_current_wal_{which}_lsn()::text"))
    finally:
        await conn.close()


async def records(url: str, start: str, end: str) -> list[dict[str, Any]]:
    conn = await connect(url)
    try:
        params = {"start": start, "end": end, "harness": list(HARNESS_RELATIONS)}
        cur = await conn.execute(RECORDS, params)
        return await cur.fetchall()
    finally:
        await conn.close()


def report(label: str, seconds: float, rows: list[dict[str, Any]], tenants: int, top: int) -> None:
    count = sum(int(r["records"]) for r in rows)
    size = sum(int(r["bytes"]) for r in rows)
    fpi = sum(int(r["fpi_bytes"]) for r in rows)
    print(f"\n### {label}: {seconds:.2f} s\n")
    print(
        f"{count:,} records ({count / tenants:.1f} a tenant), {size / 1e6:,.1f} MB "
        f"({size / tenants:,.0f} B a tenant), of which full-page images {fpi / 1e6:,.1f} MB\n"
    )
    print("| record | relation | records | a tenant | MB |")
    print("|---|---|---:|---:|---:|")
    for r in rows[:top]:
        n = int(r["records"])
        print(
            f"| {r['record']} | {r['relation']} | {n:,} | {n / tenants:.2f} "
            f"| {int(r['bytes']) / 1e6:,.1f} |"
        )


async def main(args: argparse.Namespace) -> int:
    url = os.environ.get("AOER_BENCH_DATABASE_URL", DEFAULT_URL)
    bench = bench_run.Bench.on_kept_database(url, args.tenants)
    await bench.prepare()
    conn = await connect(url)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
    finally:
        await conn.close()
    try:
        await reset(url)
        conn = await connect(url)
        try:
            start = await lsn(url)
            started = time.perf_counter()
            await run_floor(conn, args.floor_plan)
            seconds = time.perf_counter() - started
        finally:
            await conn.close()
        await bench.check("floor", complete=True)  # the reference the refresh is checked against
        end = await lsn(url, flushed=True)
        floor_rows = await records(url, start, end)
        await reset(url)
        start = await lsn(url)
        system_s, _ = await bench.system(args.processes)
        end = await lsn(url, flushed=True)
        system_rows = await records(url, start, end)
    finally:
        await bench.close()
    report(f"floor ({args.floor_plan} plan)", seconds, floor_rows, args.tenants, args.top)
    workers = f"{args.processes} running worker" + ("s" if args.processes > 1 else "")
    report(f"this system, {workers}", system_s, system_rows, args.tenants, args.top)
    return bench.exit_code()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=bench_run.FULL_TENANTS)
    parser.add_argument("--processes", type=int, default=2, help="running `aoer worker`s")
    parser.add_argument("--floor-plan", choices=sorted(FLOOR_PLANS), default="scan")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
