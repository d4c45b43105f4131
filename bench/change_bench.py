"""What `previous` + `change` (migration 0011, DESIGN §13) cost a refresh: A/B on the same data.

Every refresh after a tenant's first replaces a summary, so the split reads (and locks) the
previous summary and builds two more JSON objects per event. `bench/run.py` empties the
summaries before each method and so never meets that path. This bench creates its own
database (AOER_BENCH_DATABASE_URL's server, database `aoer_bench_change`), generates the
bench fleet, stores every summary once, then refreshes the whole fleet in batches of
`--batch` tenants with the statement a worker runs for a batch (store the scores, insert one
event per tenant), alternating A (0003's `aoer_store_scores`, kept here as
`bench_store_scores_before`, with 0003's event) and B (0011's, with `previous` and `change`)
in ABBA order so drift and bloat fall on both. Prints each refresh and the medians.

    .venv/bin/python bench/change_bench.py --tenants 20000 --rounds 3
"""

import argparse
import asyncio
import os
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aoer.db.pool import Connection, connect
from aoer.db.schema import available_migrations, migrate
from common import DEFAULT_URL, drop_database, recreate_database, with_database
from dataset import generate


def migration_function(version: int, name: str, renamed: str) -> str:
    """A function's CREATE statement as migration `version` wrote it, renamed: the shipped
    text, not a copy that could drift from it."""
    [migration] = [m for m in available_migrations() if m.version == version]
    found = re.search(rf"CREATE FUNCTION {name}\(.*?\n\$\$;\n", migration.sql, re.S)
    assert found, f"migration {version} has no function {name}"
    return found.group(0).replace(f"FUNCTION {name}(", f"FUNCTION {renamed}(", 1)


# 0003's score function and the store of that time, renamed: the "before" of this comparison.
BEFORE_FUNCTIONS = (
    migration_function(3, "aoer_compute_scores_as_of", "bench_compute_scores_before")
    + """
CREATE FUNCTION bench_store_scores_before(tenant_ids uuid[])
RETURNS TABLE (tenant_id uuid, aoer_score numeric, visibility_risk numeric, metrics jsonb)
LANGUAGE sql VOLATILE AS $$
    INSERT INTO aoer_summary AS s (tenant_id, aoer_score, visibility_risk, metrics, last_updated)
    SELECT c.tenant_id, c.aoer_score, c.visibility_risk, c.metrics, now()
    FROM bench_compute_scores_before(tenant_ids, current_date) c
    ON CONFLICT (tenant_id) DO UPDATE
       SET aoer_score = EXCLUDED.aoer_score,
           visibility_risk = EXCLUDED.visibility_risk,
           metrics = EXCLUDED.metrics,
           last_updated = EXCLUDED.last_updated,
           updated_at = now()
    RETURNING s.tenant_id, s.aoer_score, s.visibility_risk, s.metrics
$$;
"""
)

# The scores + events part of `complete_jobs` (jobs.sql), before and after.
BEFORE = """
WITH scores AS (SELECT * FROM bench_store_scores_before(%(ids)s::uuid[]))
INSERT INTO metrics_events (tenant_id, event_type, event_data)
SELECT sc.tenant_id, 'aoer_recompute',
       jsonb_build_object('priority', 'low', 'aoerScore', sc.aoer_score,
                          'visibilityRisk', sc.visibility_risk, 'metrics', sc.metrics,
                          'workerId', 'bench')
FROM scores sc
"""
AFTER = """
WITH scores AS (SELECT * FROM aoer_store_scores(%(ids)s::uuid[]))
INSERT INTO metrics_events (tenant_id, event_type, event_data)
SELECT sc.tenant_id, 'aoer_recompute',
       jsonb_build_object('priority', 'low', 'aoerScore', sc.aoer_score,
                          'visibilityRisk', sc.visibility_risk, 'metrics', sc.metrics,
                          'previous', sc.previous, 'change', sc.change,
                          'workerId', 'bench')
FROM scores sc
"""


def backend_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server process `pid` has used (Linux /proc). On a
    shared, noisy host it is a far steadier measure of a statement's cost than wall time."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def refresh(
    conn: Connection, sql: str, batches: list[list[str]], pid: int
) -> tuple[float, float]:
    """The whole fleet, one transaction per batch as a worker commits: (wall s, CPU s)."""
    start, cpu = time.perf_counter(), backend_cpu_s(pid)
    for ids in batches:
        async with conn.transaction():
            await conn.execute(sql, {"ids": ids})
    return time.perf_counter() - start, backend_cpu_s(pid) - cpu


async def run(args: argparse.Namespace) -> None:
    server = os.environ.get("AOER_BENCH_DATABASE_URL", DEFAULT_URL)
    url = with_database(server, "aoer_bench_change")
    recreate_database(url)
    try:
        await migrate(url)
        conn = await connect(url)
        try:
            rows = await generate(conn, args.tenants)
            print(f"{args.tenants:,} tenants, {rows:,} signal rows; batches of {args.batch}")
            await conn.execute(BEFORE_FUNCTIONS)
            cur = await conn.execute("SELECT id::text AS id FROM tenants ORDER BY id")
            ids = [str(r["id"]) for r in await cur.fetchall()]
            batches = [ids[i : i + args.batch] for i in range(0, len(ids), args.batch)]
            cur = await conn.execute("SELECT pg_backend_pid() AS pid")
            row = await cur.fetchone()
            assert row is not None
            pid = int(str(row["pid"]))
            await refresh(conn, AFTER, batches, pid)  # every summary exists from here on
            await conn.execute("VACUUM ANALYZE aoer_summary, metrics_events")
            wall: dict[str, list[float]] = {"before": [], "after": []}
            cpu: dict[str, list[float]] = {"before": [], "after": []}
            for r in range(args.rounds):
                order = ("before", "after") if r % 2 == 0 else ("after", "before")
                for name in order:
                    sql = BEFORE if name == "before" else AFTER
                    seconds, cpu_s = await refresh(conn, sql, batches, pid)
                    wall[name].append(seconds)
                    cpu[name].append(cpu_s)
                    print(f"round {r + 1} {name:6}: {seconds:.3f} s wall, {cpu_s:.2f} s CPU")
            for label, m in (("wall", wall), ("server CPU", cpu)):
                b, a = statistics.median(m["before"]), statistics.median(m["after"])
                ratio = a / b
                print(
                    f"{label}: median before {b:.3f} s, after {a:.3f} s, after/before {ratio:.3f}"
                )
        finally:
            await conn.close()
    finally:
        if not args.keep_database:
            drop_database(url)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--keep-database", action="store_true")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(run(parse_args()))
