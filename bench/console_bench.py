"""The operator console's numbers (DESIGN §15, issue 12).

1. The job list over N jobs (default 1,000,000, generated in SQL): `GET /api/jobs` through
   the real app (in process, over ASGI) for each filter at depth 0 (first page), the middle
   and the end, keyset cursors taken from the data. Target: < 100 ms at any depth.
2. Pause and resume across three `aoer worker` processes: from the pause's commit until every
   worker has heard it (its heartbeat row says paused), a check that nothing is claimed while
   paused, and from the resume's commit until the first claim and until every job is done.
   Target: each within 1 s.
3. What the console's indexes cost the queue's writes: a cron tick and a drain of every
   tenant with and without them (as before migration 0010), alternating rounds.

    .venv/bin/python bench/console_bench.py [--jobs 1000000] [--tenants 10000] [--repeats 5]

Uses its own database (AOER_CONSOLE_BENCH_DATABASE_URL, default
postgresql://postgres@127.0.0.1:5432/aoer_console_bench), dropped at the end unless
--keep-database.
"""

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any, cast
from uuid import UUID

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aoer import queue
from aoer.api.auth import TokenService
from aoer.bootstrap import ProcessKind, open_services
from aoer.bootstrap.api import build_api
from aoer.bootstrap.worker import build_worker
from aoer.config import Settings
from aoer.db.pool import Connection, connect
from aoer.db.schema import migrate
from aoer.queue import console
from aoer.store import Store
from common import aoer_cmd, child_env, drop_database, recreate_database, spawn

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/aoer_console_bench"
SECRET = "console-bench-secret-0123456789abcdef-0123456789"
PAGE = 50
WORKERS = 3
QUIET_S = 1.5  # after a pause, nothing may be claimed for this long
# Of the generated jobs, the newest are a drain under way: this many in workers' hands (four
# processes of two 1,000-job batches) and this many waiting before them.
IN_FLIGHT = 8_000
WAITING = 2_000
FILTERS: dict[str, dict[str, str]] = {
    "none": {},
    "status=failed": {"status": "failed"},
    "status=completed": {"status": "completed"},
    "status=processing": {"status": "processing"},
    "status=queued": {"status": "queued"},
    "priority=low": {"priority": "low"},
    "priority=urgent": {"priority": "urgent"},
    "status=completed&priority=high": {"status": "completed", "priority": "high"},
    "tenantId": {"tenantId": "00000000-0000-0000-0000-000000000007"},
}


async def scalar(conn: Connection, sql: str, params: Any = None) -> Any:
    cur = await conn.execute(sql, params)
    row = await cur.fetchone()
    return None if row is None else next(iter(dict(row).values()))


async def finish_the_drain(url: str) -> None:
    """The generated drain under way ends: its waiting and in-flight jobs are completed."""
    conn = await connect(url)
    try:
        await conn.execute(
            "UPDATE aoer_queue SET status = 'completed', completed_at = now(),"
            " lease_expires_at = NULL WHERE status IN ('queued', 'processing')"
        )
    finally:
        await conn.close()


async def generate(url: str, jobs: int, tenants: int) -> float:
    """Tenants and `jobs` jobs over the last weeks (2 s apart), in SQL: the newest IN_FLIGHT
    in workers' hands and WAITING before them queued (a drain under way), the rest finished,
    a few percent failed; priorities mostly low (cron)."""
    started = time.perf_counter()
    conn = await connect(url)
    try:
        await conn.execute(
            "INSERT INTO tenants (id, name) SELECT ('00000000-0000-0000-0000-' ||"
            " lpad(g::text, 12, '0'))::uuid, 'Dealer ' || g FROM generate_series(1, %s) g",
            (tenants,),
        )
        await conn.execute(
            """
            INSERT INTO aoer_queue (tenant_id, priority, status, retry_count, scheduled_at,
                                    started_at, completed_at, error_message, locked_by,
                                    lease_expires_at, created_at)
            SELECT ('00000000-0000-0000-0000-'
                    || lpad((1 + g %% %(tenants)s)::text, 12, '0'))::uuid,
                   (ARRAY['low','low','low','low','low','low','medium','medium','high',
                          'urgent'])[1 + (g * 7) %% 10],
                   s.status,
                   CASE WHEN s.status = 'failed' THEN 3 ELSE 0 END,
                   at,
                   CASE WHEN s.status <> 'queued' THEN at + interval '40 ms' END,
                   CASE WHEN s.finished THEN at + interval '90 ms' END,
                   CASE WHEN s.status = 'failed' THEN 'poisoned tenant' END,
                   CASE WHEN s.status <> 'queued' THEN 'bench' END,
                   CASE WHEN s.status = 'processing' THEN now() + interval '30 s' END,
                   at
            FROM generate_series(1, %(jobs)s) g,
                 LATERAL (SELECT now() - make_interval(secs => g * 2) AS at) t,
                 LATERAL (
                     SELECT x.status, x.status IN ('completed', 'failed') AS finished
                     FROM (SELECT CASE WHEN g <= %(waiting)s THEN 'queued'
                                       WHEN g <= %(waiting)s + %(in_flight)s THEN 'processing'
                                       WHEN g %% 37 = 0 THEN 'failed'
                                       ELSE 'completed' END AS status) x
                 ) s
            """,
            {"jobs": jobs, "tenants": tenants, "waiting": WAITING, "in_flight": IN_FLIGHT},
        )
        await conn.execute("VACUUM ANALYZE aoer_queue")
        await conn.execute("ANALYZE tenants")
    finally:
        await conn.close()
    return time.perf_counter() - started


async def cursors(conn: Connection, params: dict[str, str]) -> dict[str, str | None]:
    """Keyset cursors of the first page, the middle and the last page of this filter."""
    where = ["true"]
    args: dict[str, Any] = {}
    for key, column in (("status", "status"), ("priority", "priority"), ("tenantId", "tenant_id")):
        if key in params:
            where.append(f"{column} = %({key})s")
            args[key] = params[key]
    clause = " AND ".join(where)
    total = int(await scalar(conn, f"SELECT count(*) FROM aoer_queue WHERE {clause}", args))
    found: dict[str, str | None] = {"first": None}
    for depth, offset in (("middle", total // 2), ("end", max(total - PAGE, 0))):
        cur = await conn.execute(
            f"SELECT created_at, id FROM aoer_queue WHERE {clause}"
            " ORDER BY created_at DESC, id DESC OFFSET %(offset)s LIMIT 1",
            {**args, "offset": offset},
        )
        row = await cur.fetchone()
        found[depth] = (
            console.encode_cursor(cast(datetime, row["created_at"]), cast(UUID, row["id"]))
            if row
            else None
        )
    found["total"] = str(total)
    return found


async def bench_list(url: str, repeats: int) -> list[str]:
    settings = Settings(AOER_JWT_SECRET=SECRET, AOER_HOME=tempfile.mkdtemp())
    token = TokenService(SECRET).mint("admin")
    lines = ["| filter | matching | first page | middle | end |", "|---|---:|---:|---:|---:|"]
    conn = await connect(url)
    async with (
        open_services(settings, kind=ProcessKind.API, database_url=url) as services,
        build_api(services) as parts,
    ):
        app = parts.app
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app),
                base_url="http://bench",
                headers={"Authorization": f"Bearer {token}"},
            ) as client,
        ):
            for name, params in FILTERS.items():
                marks = await cursors(conn, params)
                cells = []
                for depth in ("first", "middle", "end"):
                    query = dict(params, limit=str(PAGE))
                    if marks[depth]:
                        query["before"] = str(marks[depth])
                    times = []
                    for _ in range(repeats + 2):
                        started = time.perf_counter()
                        response = await client.get("/api/jobs", params=query)
                        times.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, response.text
                    times = sorted(times[2:])  # the first two warm the plan and the cache
                    cells.append(f"{statistics.median(times):.1f} / {max(times):.1f}")
                lines.append(
                    f"| {name} | {int(marks['total'] or 0):,} | " + " | ".join(cells) + " |"
                )
                print(lines[-1], flush=True)
    await conn.close()
    return lines


async def wait_until(conn: Connection, sql: str, timeout_s: float = 30.0) -> None:
    deadline = time.perf_counter() + timeout_s
    while not await scalar(conn, sql):
        if time.perf_counter() > deadline:
            raise SystemExit(f"timed out waiting for: {sql}")
        await asyncio.sleep(0.005)


async def bench_pause(url: str, repeats: int, log_dir: Path) -> list[str]:
    settings = Settings(AOER_HOME=tempfile.mkdtemp(), DATABASE_URL=url)
    children = [
        spawn(f"worker-{i}", aoer_cmd("worker"), child_env(url, AOER_RUN_CRON="false"), log_dir)
        for i in range(WORKERS)
    ]
    conn = await connect(url)
    results: dict[str, list[float]] = {
        "pause": [],
        "resume_first": [],
        "resume_all": [],
        "done": [],
    }
    claimed_while_paused = 0
    try:
        await wait_until(
            conn,
            f"SELECT count(*) = {WORKERS} FROM aoer_workers WHERE"
            " last_heartbeat_at > now() - interval '10 s'",
            60,
        )
        await wait_until(
            conn,
            "SELECT NOT EXISTS (SELECT 1 FROM aoer_queue WHERE status IN ('queued', 'processing'))",
            120,
        )
        tenants = [
            cast(UUID, row["id"])
            for row in await (
                await conn.execute("SELECT id FROM tenants ORDER BY id LIMIT 50")
            ).fetchall()
        ]
        async with open_services(settings, database_url=url) as services:
            store: Store = services.store
            actor = console.Actor("bench", "admin")
            for _ in range(repeats):
                async with store.session() as session:
                    await console.set_paused(session, True, actor)
                await wait_until(conn, "SELECT bool_and(paused) FROM aoer_workers")
                results["pause"].append(
                    float(
                        await scalar(
                            conn,
                            "SELECT extract(epoch FROM max(w.last_heartbeat_at) - s.changed_at)"
                            " FROM aoer_workers w, aoer_queue_state s GROUP BY s.changed_at",
                        )
                    )
                )
                async with store.session() as session:
                    jobs = await queue.enqueue_many(session, tenants, "high")
                ids = [j.id for j in jobs]
                deadline = time.perf_counter() + QUIET_S
                while time.perf_counter() < deadline:
                    claimed_while_paused = max(
                        claimed_while_paused,
                        int(
                            await scalar(
                                conn,
                                "SELECT count(*) FROM aoer_queue WHERE id = ANY (%s)"
                                " AND status <> 'queued'",
                                (ids,),
                            )
                        ),
                    )
                    await asyncio.sleep(0.02)
                async with store.session() as session:
                    await console.set_paused(session, False, actor)
                await wait_until(conn, "SELECT NOT bool_or(paused) FROM aoer_workers")
                await wait_until(
                    conn,
                    f"SELECT count(*) = {len(ids)} FROM aoer_queue WHERE"
                    f" id = ANY ('{{{','.join(map(str, ids))}}}'::uuid[])"
                    " AND status = 'completed'",
                )
                row = await (
                    await conn.execute(
                        "SELECT extract(epoch FROM min(q.started_at) - s.changed_at) AS first,"
                        " extract(epoch FROM max(q.completed_at) - s.changed_at) AS done,"
                        " (SELECT extract(epoch FROM max(w.last_heartbeat_at) - s.changed_at)"
                        "  FROM aoer_workers w) AS heard"
                        " FROM aoer_queue q, aoer_queue_state s WHERE q.id = ANY (%s)"
                        " GROUP BY s.changed_at",
                        (ids,),
                    )
                ).fetchone()
                assert row is not None
                results["resume_first"].append(float(str(row["first"])))
                results["resume_all"].append(float(str(row["heard"])))
                results["done"].append(float(str(row["done"])))
    finally:
        for child in children:
            child.proc.terminate()
        for child in children:
            with contextlib.suppress(Exception):
                child.proc.wait(30)
        await conn.close()

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms (max {max(values) * 1000:.0f} ms)"

    lines = [
        f"- pause heard by all {WORKERS} workers (commit → last heartbeat row saying paused): "
        + ms(results["pause"]),
        f"- jobs claimed during {QUIET_S:.1f} s of pause, {len(tenants)} enqueued each round: "
        f"{claimed_while_paused}",
        "- resume → first job claimed: " + ms(results["resume_first"]),
        f"- resume heard by all {WORKERS} workers: " + ms(results["resume_all"]),
        f"- resume → all {len(tenants)} jobs completed: " + ms(results["done"]),
    ]
    for line in lines:
        print(line, flush=True)
    return lines


# The console's indexes on aoer_queue (migration 0010, with 0019's finished-jobs index in place
# of the general one), and the one 0010 dropped, for the write-cost comparison (the same
# statements as the migrations).
CONSOLE_INDEXES = {
    "aoer_queue_console_finished_idx": (
        "ON aoer_queue (created_at DESC, id DESC) WHERE status IN ('completed', 'failed')"
    ),
    "aoer_queue_console_queued_idx": (
        "ON aoer_queue (created_at DESC, id DESC) WHERE status = 'queued'"
    ),
    "aoer_queue_console_failed_idx": (
        "ON aoer_queue (created_at DESC, id DESC) WHERE status = 'failed'"
    ),
    "aoer_queue_console_priority_idx": (
        "ON aoer_queue (priority, created_at DESC, id DESC) WHERE priority <> 'low'"
    ),
    "aoer_queue_console_tenant_idx": "ON aoer_queue (tenant_id, created_at DESC, id DESC)",
}
OLD_INDEX = "CREATE INDEX aoer_queue_tenant_status_idx ON aoer_queue (tenant_id, status)"


async def use_console_indexes(conn: Connection, on: bool) -> None:
    for name, definition in CONSOLE_INDEXES.items():
        if on:
            await conn.execute(f"CREATE INDEX IF NOT EXISTS {name} {definition}")
        else:
            await conn.execute(f"DROP INDEX IF EXISTS {name}")
    if on:
        await conn.execute("DROP INDEX IF EXISTS aoer_queue_tenant_status_idx")
    else:
        await conn.execute(OLD_INDEX.replace("INDEX", "INDEX IF NOT EXISTS", 1))


async def bench_writes(url: str, rounds: int) -> list[str]:
    """Every tenant queued (one cron tick) and drained by one in-process worker, with the
    console's indexes and without them (as before migration 0010), alternating rounds."""
    settings = Settings(
        AOER_HOME=tempfile.mkdtemp(), AOER_RUN_CRON=False, AOER_LOG_EACH_TENANT=False
    )
    conn = await connect(url)
    await conn.execute(
        "INSERT INTO aiv_raw_signals (dealer_id, date, aeo, geo, ugc) SELECT t.id,"
        " current_date - d, 50 + d % 7, 40 + d % 5, 30 + d % 3 FROM tenants t,"
        " generate_series(0, 29) d"
        " ON CONFLICT DO NOTHING"
    )
    rates: dict[bool, list[float]] = {True: [], False: []}
    tenants = int(await scalar(conn, "SELECT count(*) FROM tenants"))
    try:
        async with open_services(settings, kind=ProcessKind.WORKER, database_url=url) as services:
            for _ in range(rounds):
                for on in (True, False):
                    await conn.execute(
                        "TRUNCATE aoer_queue, aoer_summary, metrics_events, aoer_failures"
                    )
                    await use_console_indexes(conn, on)
                    await conn.execute("VACUUM ANALYZE aoer_queue")
                    started = time.perf_counter()
                    async with services.store.session() as session:
                        await queue.trigger_cron(session)
                    await build_worker(services, drain=True).run()
                    rates[on].append(tenants / (time.perf_counter() - started))
    finally:
        await use_console_indexes(conn, True)
        await conn.close()
    lines = [
        f"- with the console indexes: {statistics.median(rates[True]):,.0f} jobs/s"
        f" (rounds: {', '.join(f'{r:,.0f}' for r in rates[True])})",
        f"- without them (before 0010): {statistics.median(rates[False]):,.0f} jobs/s"
        f" (rounds: {', '.join(f'{r:,.0f}' for r in rates[False])})",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument("--only", choices=("list", "pause", "writes"))
    args = parser.parse_args()
    url = os.environ.get("AOER_CONSOLE_BENCH_DATABASE_URL", DEFAULT_URL)
    recreate_database(url)
    try:
        await migrate(url)
        seconds = await generate(url, args.jobs, args.tenants)
        print(f"generated {args.jobs:,} jobs of {args.tenants:,} tenants in {seconds:.1f} s")
        if args.only in (None, "list"):
            print(f"GET /api/jobs?limit={PAGE}, median / max ms of {args.repeats} requests:")
            await bench_list(url, args.repeats)
        await finish_the_drain(url)  # the parts below start from an idle queue
        if args.only in (None, "pause"):
            print(
                f"pause and resume across {WORKERS} `aoer worker` processes, {args.repeats} rounds:"
            )
            with tempfile.TemporaryDirectory() as logs:
                await bench_pause(url, args.repeats, Path(logs))
        if args.only in (None, "writes"):
            print(f"queue write cost: cron tick + drain of {args.tenants:,} tenants, one worker:")
            await bench_writes(url, args.repeats)
    finally:
        if not args.keep_database:
            drop_database(url)


if __name__ == "__main__":
    asyncio.run(main())
