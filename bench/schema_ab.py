"""Alternate running-worker refreshes between two variants of the schema, on the same data.

A change of a few per cent in a refresh is smaller than what a shared host moves between two
runs; alternating the variants round by round puts that drift on both. Each round empties the
output tables and the queue (as `bench/run.py` does), runs variant A's or B's SQL on the
emptied database (indexes and constraints on an empty queue cost nothing to add or drop),
then times one refresh exactly as `bench/run.py` does (workers already running, `aoer cron
--once` fires the tick, tick → last summary committed) and reads the host's CPU-seconds from
`/proc/stat` over it. The order alternates (A B, B A, ...). The database is `bench/run.py`'s,
kept by an earlier `--keep-database` run with the same number of tenants. The schema is left
as the last refresh had it: with an even number of rounds, variant A's.

    python bench/schema_ab.py --tenants 100000 --rounds 6 \\
        --a "ALTER TABLE aoer_queue ADD CONSTRAINT ... FOREIGN KEY ..." --b "..."
"""

import argparse
import asyncio
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run as bench_run
from aoer.db.pool import connect
from common import DEFAULT_URL, reset


def host_cpu_s() -> float:
    """Busy CPU-seconds of the whole host so far (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    return (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / ticks


async def apply(url: str, sql: str) -> None:
    conn = await connect(url)
    try:
        for statement in (s for s in sql.split(";") if s.strip()):
            await conn.execute(statement.encode())
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> int:
    url = os.environ.get("AOER_BENCH_DATABASE_URL", DEFAULT_URL)
    bench = bench_run.Bench.on_kept_database(url, args.tenants)
    await bench.prepare()
    await bench.floor()  # the reference the refreshes' summaries are checked against
    results: dict[str, list[tuple[float, float]]] = {"A": [], "B": []}
    variants = {"A": args.a, "B": args.b}
    try:
        for round_no in range(args.rounds):
            order = ("A", "B") if round_no % 2 == 0 else ("B", "A")
            for name in order:
                await reset(url)
                await apply(url, variants[name])
                before = host_cpu_s()
                seconds, _ = await bench.system(args.processes, round_no)
                cpu = host_cpu_s() - before
                results[name].append((seconds, cpu))
                print(f"round {round_no + 1} {name}: {seconds:.2f} s, {cpu:.1f} CPU-s", flush=True)
    finally:
        await bench.close()
    for name, runs in results.items():
        walls = ", ".join(f"{s:.2f}" for s, _ in runs)
        print(
            f"{name}: median {statistics.median(s for s, _ in runs):.2f} s "
            f"({statistics.median(c for _, c in runs):.1f} CPU-s); runs {walls}"
        )
    return bench.exit_code()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=bench_run.FULL_TENANTS)
    parser.add_argument("--rounds", type=int, default=6, help="rounds, each A and B once")
    parser.add_argument("--processes", type=int, default=2, help="running `aoer worker`s")
    parser.add_argument("--a", default="", help="SQL run before each refresh of variant A")
    parser.add_argument("--b", default="", help="SQL run before each refresh of variant B")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
